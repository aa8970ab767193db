//! Translation (docs/architecture.md, translation): profiles in from
//! `docker run` lines and containers (`import`), and out to engines that
//! schedule across machines (`render`).

pub mod draft;
pub mod import;
pub mod render;
