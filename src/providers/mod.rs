//! Action providers. `codebuild_local` runs buildspecs on this machine; the
//! engine (issue 3) drives it, and the other providers follow.

pub mod codebuild_local;
