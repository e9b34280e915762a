//! The domain service over a fleet's config, and starting commands through every gate.

use std::sync::Arc;
use std::time::Duration;

use sshwarden::config::Dirs;
use sshwarden::net::HickoryResolver;
use sshwarden::service::{Service, ServiceError};
use sshwarden::tasks::Task;

use super::sshd::Fleet;

pub fn service(fleet: &Fleet) -> Arc<Service> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("SSHWARDEN_LOG"))
        .with_test_writer()
        .try_init();
    let resolver = Arc::new(HickoryResolver::from_system(Duration::from_secs(2)).unwrap());
    Service::start(Dirs::new(fleet.config_dir(), None, None), resolver).unwrap()
}

pub async fn start(
    svc: &Arc<Service>,
    alias: &str,
    command: &str,
    timeout: Option<u64>,
) -> Result<Arc<Task>, ServiceError> {
    let p = svc.prepare(alias, command, timeout, Some("test")).await?;
    svc.launch(p, Some("test"))
}
