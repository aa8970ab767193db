//! `launch render` for other engines (docs/architecture.md, translation).
