pub mod api;
pub mod model;
pub mod report;
pub mod scenario;
pub mod sim;
