DROP TABLE comments;
DROP TABLE articles;
DROP TABLE categories;
DROP TABLE locales;
DROP TABLE deleted_authors;
DROP TABLE authors;
DROP TABLE author_groups;
