pub mod api;
pub mod controllers;
pub mod faults;
pub mod model;
pub mod report;
pub mod scenario;
pub mod scheduler;
pub mod sim;
