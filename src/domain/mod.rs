//! Records and rules of the ISMS: value types that can only hold valid data, state machines
//! and the checks the standard asks for. No I/O happens here.

pub mod access;
pub mod actor;
pub mod audit;
pub mod nonconformity;
pub mod references;
pub mod text;
pub mod time;
