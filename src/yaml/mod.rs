//! Reading YAML text: the one positioned tree (`tree`) that the validator
//! (`model::yamlpos`) and the comment-preserving editor (`edit`) share, and the lexical
//! scans (`scan`) that recover byte extents the parser's markers do not give.

pub(crate) mod scan;
pub(crate) mod tree;
