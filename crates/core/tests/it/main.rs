//! Integration tests of the core crate: the validator over the corpus of bad
//! files and its properties.

mod events;
mod locales;
mod validator;
