//! A hand-written statement that each connection prepares once. Diesel never caches
//! `sql_query` (its text may be built at run time), so PostgreSQL parses and plans it on every
//! call: for a join on a request's hot path that planning costs more than running it.

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::Error as DieselError;
use diesel::sql_types::{BigInt, Integer, Text, Untyped};
use diesel::{QueryResult, RunQueryDsl};

use crate::{AnyConnection, MultiBackend};

/// `sql` with each `?` bound, in order, to the next value given. The text is `'static`, so a
/// connection holds one prepared statement for it whatever the values.
#[derive(Debug, Clone)]
pub struct Prepared<'a> {
    sql: &'static str,
    values: Vec<Value<'a>>,
}

#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Text(&'a str),
    BigInt(i64),
    Integer(i32),
}

impl<'a> Prepared<'a> {
    /// `sql` must hold no `?` but its placeholders.
    pub fn new(sql: &'static str) -> Self {
        Self {
            sql,
            values: Vec::new(),
        }
    }

    pub fn text(mut self, value: &'a str) -> Self {
        self.values.push(Value::Text(value));
        self
    }

    pub fn big_int(mut self, value: i64) -> Self {
        self.values.push(Value::BigInt(value));
        self
    }

    pub fn integer(mut self, value: i32) -> Self {
        self.values.push(Value::Integer(value));
        self
    }
}

impl QueryFragment<MultiBackend> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        let mut values = self.values.iter();
        let mut pieces = self.sql.split('?');
        if let Some(first) = pieces.next() {
            out.push_sql(first);
        }
        for piece in pieces {
            match values.next() {
                Some(Value::Text(v)) => out.push_bind_param::<Text, str>(v)?,
                Some(Value::BigInt(v)) => out.push_bind_param::<BigInt, i64>(v)?,
                Some(Value::Integer(v)) => out.push_bind_param::<Integer, i32>(v)?,
                None => return Err(miscounted()),
            }
            out.push_sql(piece);
        }
        if values.next().is_some() {
            return Err(miscounted());
        }
        Ok(())
    }
}

fn miscounted() -> DieselError {
    DieselError::QueryBuilderError("a prepared statement's values do not match its placeholders".into())
}

impl QueryId for Prepared<'_> {
    type QueryId = ();
    // Cached by its SQL text, which is fixed.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

impl RunQueryDsl<AnyConnection> for Prepared<'_> {}
