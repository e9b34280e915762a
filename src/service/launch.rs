//! Launching admitted work: the durable start record, then the task. `Prepared` (admission)
//! comes only from the gate (`prepare_with`); this is where it is spent.
//!
//! Owns: `Service::launch` (a command's task spec, its work on a pooled SSH channel with
//! `become` and secret masking, and its end record) and `start_audited` (spawn behind a gate
//! that opens only once the durable start record is on disk: no record, no run). Never
//! judges anything: whatever reaches here was admitted.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::config::OnOutputLimit;
use crate::service::{Prepared, Service, ServiceError, command_run, command_sha256, stream_mask, task_owner};
use crate::tasks::{self, CancelledBy, Task, TaskSpec, WorkOutcome};

impl Service {
    /// Writes the durable start record, then spawns the task. No record, no run.
    pub fn launch(self: &Arc<Self>, p: Prepared, client: Option<&str>) -> Result<Arc<Task>, ServiceError> {
        let cfg = self.config();
        let spec = TaskSpec {
            alias: p.host.alias.clone(),
            target_ip: p.target.addr.ip().to_string(),
            command_sha256: command_sha256(&p.command),
            command: self.shown_command(&cfg, &p.command),
            owner: task_owner(client.unwrap_or("")),
            host_slots: p.host.max_concurrency as usize,
            timeout: p.timeout,
            stop_grace: tasks::STOP_GRACE,
            ttl: Duration::from_secs(p.limits.task_result_ttl),
            output_cap: p.limits.max_output_bytes,
            kill_on_output_limit: p.limits.on_output_limit == OnOutputLimit::Kill,
        };
        let via: Vec<String> = p.route.iter().map(|(t, _)| t.alias.clone()).collect();
        let resolved_remotely = p.target.remote_name.is_some();
        let mut fields = json!({ "alias": p.host.alias, "target_ip": spec.target_ip, "command": p.command, "timeout_seconds": spec.timeout.as_secs() });
        if !via.is_empty() {
            fields["via"] = json!(via);
        }
        if resolved_remotely {
            fields["resolve"] = json!("remote: the jump host resolved the name; no CIDR rule applied");
        }
        if let Some(id) = &p.approval {
            fields["approval_id"] = json!(id);
        }
        if let Some(b) = &p.decision.elevate {
            fields["become_user"] = json!(b.user);
            fields["become_method"] = json!(b.method.name());
        }
        let (svc, known_hosts) = (self.clone(), cfg.policy.known_hosts_path.clone());
        let Prepared { route, host, credential, target, command, decision, become_password, secrets, .. } = p;
        let work: tasks::Work = Box::new(move |ctx| {
            Box::pin(async move {
                let started = || ctx.set_running();
                let masking = stream_mask::MaskingSink::new(&ctx.sink, &secrets);
                let to = crate::ssh::Destination {
                    route: &route,
                    target: &target,
                    cred: &credential,
                    known_hosts: &known_hosts,
                    connect_timeout: host.connect_timeout,
                };
                let run = command_run::Run { pool: &svc.pool, to };
                let outcome = match &decision.elevate {
                    None => command_run::outcome_of(
                        run.exec(&command, crate::ssh::Input::Now(&[]), &masking, &ctx.cancel, &started).await,
                    ),
                    Some(b) => {
                        run.elevated(&command, b, become_password.as_ref(), &masking, &ctx.cancel, &started).await
                    }
                };
                masking.finish();
                match outcome {
                    WorkOutcome::Failed(mut f) => {
                        f.error = stream_mask::mask_str(&f.error, &secrets);
                        WorkOutcome::Failed(f)
                    }
                    other => other,
                }
            })
        });
        let task = self.start_audited(spec, work, "task_start", fields, client)?;
        let (svc, t) = (self.clone(), task.clone());
        self.enders.spawn(async move {
            let state = t.finished().await;
            let snap = t.snapshot();
            svc.metrics.task_finished(state.name(), snap.elapsed_ms as f64 / 1000.0);
            svc.audit_or_warn(None, "task_end", json!({ "task_id": t.id, "alias": t.spec.alias, "state": state, "stdout_bytes": snap.stdout_bytes, "stderr_bytes": snap.stderr_bytes, "duration_ms": snap.elapsed_ms }));
        });
        Ok(task)
    }

    /// Spawns `work` behind a gate that opens only once the durable `event` record (with
    /// the task id added to `fields`) is on disk: no record, no run.
    pub(crate) fn start_audited(
        &self,
        spec: TaskSpec,
        work: tasks::Work,
        event: &str,
        mut fields: Value,
        client: Option<&str>,
    ) -> Result<Arc<Task>, ServiceError> {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let gate2 = gate.clone();
        let gated: tasks::Work = Box::new(move |ctx| {
            Box::pin(async move {
                if gate2.acquire().await.is_err() {
                    return WorkOutcome::Failed("audit start record could not be written; nothing was run".into());
                }
                work(ctx).await
            })
        });
        let task = self.tasks.spawn(spec, gated).map_err(ServiceError::Task)?;
        fields["task_id"] = json!(task.id);
        match self.audit(client, event, fields, true) {
            Ok(()) => {
                gate.add_permits(1);
                Ok(task)
            }
            Err(e) => {
                gate.close();
                let _ = self.tasks.cancel(&task.id, CancelledBy::Client);
                Err(ServiceError::Audit(e))
            }
        }
    }
}
