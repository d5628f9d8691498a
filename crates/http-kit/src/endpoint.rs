use actix_web::dev::HttpServiceFactory;
use actix_web::{FromRequest, Handler, Resource, Responder, web};

use crate::ApiError;

/// A resource that knows its methods, so any other method answers 405 with `Allow`
/// (seed 004) in the error envelope.
pub struct Endpoint {
    resource: Resource,
    methods: Vec<&'static str>,
}

macro_rules! method {
    ($name:ident, $route:ident, $verb:literal) => {
        pub fn $name<F, Args>(self, handler: F) -> Self
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            self.route($verb, web::$route().to(handler))
        }
    };
}

impl Endpoint {
    pub fn new(path: &str) -> Self {
        Self {
            resource: web::resource(path),
            methods: Vec::new(),
        }
    }

    method!(get, get, "GET");
    method!(post, post, "POST");
    method!(put, put, "PUT");
    method!(patch, patch, "PATCH");
    method!(delete, delete, "DELETE");

    fn route(mut self, verb: &'static str, route: actix_web::Route) -> Self {
        self.resource = self.resource.route(route);
        self.methods.push(verb);
        self
    }

    /// Data or extractor settings for this resource only (they win over the app's).
    pub fn app_data<U: 'static>(mut self, data: U) -> Self {
        self.resource = self.resource.app_data(data);
        self
    }

    /// The finished resource, for `ServiceConfig::service`.
    pub fn build(self) -> impl HttpServiceFactory {
        let allow = self.methods;
        self.resource.default_service(web::to(move || {
            let error = ApiError::method_not_allowed(&allow);
            async move { Err::<actix_web::HttpResponse, _>(error) }
        }))
    }
}
