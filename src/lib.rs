pub mod api;
pub mod sim;
