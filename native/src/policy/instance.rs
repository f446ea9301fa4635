//! One loaded policy: its compiled component, a small pool of configured instances, and the
//! fail-closed call path (deadline, memory cap, fresh instance after any failure).
//!
//! Concurrency: each call takes an idle instance from the pool or instantiates a new one, so
//! sessions never wait for each other's policy calls; at most [`MAX_INSTANCES`] instances of
//! one policy run at once, and up to [`MAX_IDLE`] are kept for reuse. A running call yields
//! to the async executor at every epoch tick, so even a policy that spins until its deadline
//! does not hold a tokio worker thread for the whole deadline.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};

use super::bindings::{Command, DataForward, Policy, PolicyPre, Verdict};
use super::fault::{Fault, MemoryCapHit};
use super::sandbox::{Sandbox, TICKS_PER_DEADLINE};
use super::validate;
use super::{PolicyError, PolicyLimits, PolicySpec};

/// Instances of one policy running at once; further calls wait for one to finish.
pub(crate) const MAX_INSTANCES: usize = 64;
/// Configured instances kept for reuse.
pub(crate) const MAX_IDLE: usize = 4;
/// Table elements, instances, tables and memories a policy may create.
const MAX_TABLE_ELEMENTS: usize = 100_000;
const MAX_PARTS: usize = 32;

/// The exports a call may enter, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Export {
    /// `configure`, run after each instantiation.
    Configure,
    /// `check-command`.
    CheckCommand,
    /// `check-forward`.
    CheckForward,
}

impl Export {
    fn as_str(self) -> &'static str {
        match self {
            Export::Configure => "configure",
            Export::CheckCommand => "check-command",
            Export::CheckForward => "check-forward",
        }
    }
}

/// What one instance's Store holds: its limits and what the limiter saw.
pub(crate) struct PolicyState {
    memory_cap: usize,
    /// Set when the guest asked for more memory than the cap.
    memory_cap_hit: bool,
    /// Epoch ticks left in the current call.
    ticks_left: u64,
}

impl ResourceLimiter for PolicyState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.memory_cap_hit = true;
            return Err(MemoryCapHit {
                cap: self.memory_cap,
                desired,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_PARTS
    }

    fn tables(&self) -> usize {
        MAX_PARTS
    }

    fn memories(&self) -> usize {
        MAX_PARTS
    }
}

/// A configured instance.
struct Live {
    store: Store<PolicyState>,
    bindings: Policy,
}

/// What a call asks.
enum Call<'a> {
    Command(&'a Command),
    Forward(&'a DataForward),
}

/// A policy file, compiled and checked, with its settings.
pub(crate) struct LoadedPolicy {
    path: PathBuf,
    /// The file name, for replies.
    name: String,
    settings: Vec<(String, String)>,
    limits: PolicyLimits,
    sandbox: Arc<Sandbox>,
    pre: PolicyPre<PolicyState>,
    idle: Mutex<Vec<Live>>,
    running: Semaphore,
}

impl LoadedPolicy {
    /// Reads, compiles and checks a policy, and configures one instance (kept for the first
    /// call) so that bad settings are refused now.
    pub(crate) async fn load(
        spec: &PolicySpec,
        limits: PolicyLimits,
        sandbox: Arc<Sandbox>,
    ) -> Result<Self, PolicyError> {
        let path = spec.path.clone();
        let bytes = std::fs::read(&path).map_err(|source| PolicyError::Read {
            path: path.clone(),
            source,
        })?;
        validate::check_header(&path, &bytes)?;
        let engine = sandbox.engine();
        let component = Component::new(engine, &bytes).map_err(|e| PolicyError::Compile {
            path: path.clone(),
            reason: format!("{e:#}"),
        })?;
        let missing = validate::missing_exports(engine, &component);
        if !missing.is_empty() {
            return Err(PolicyError::NotAPolicy {
                path,
                missing: missing.join(", "),
            });
        }
        let imports = validate::imports(engine, &component);
        if !imports.is_empty() {
            tracing::debug!(policy = %path.display(), "imports linked as traps: {}", imports.join(" "));
        }
        let mut linker = Linker::<PolicyState>::new(engine);
        super::stubs::link_empty_environment(&mut linker, engine, &component).map_err(|e| {
            PolicyError::Compile {
                path: path.clone(),
                reason: format!("{e:#}"),
            }
        })?;
        // Everything else a std-built guest may import (stdio, clocks, files, random...)
        // traps when called: a policy gets no capability.
        linker
            .define_unknown_imports_as_traps(&component)
            .map_err(|e| PolicyError::Compile {
                path: path.clone(),
                reason: format!("{e:#}"),
            })?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(PolicyPre::new)
            .map_err(|e| PolicyError::WrongTypes {
                path: path.clone(),
                reason: format!("{e:#}"),
            })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let policy = Self {
            path,
            name,
            settings: spec.settings.clone(),
            limits,
            sandbox,
            pre,
            idle: Mutex::new(Vec::new()),
            running: Semaphore::new(MAX_INSTANCES),
        };
        let live = policy.instantiate().await.map_err(|error| match error {
            Instantiation::Refused(message) => PolicyError::Configure {
                path: policy.path.clone(),
                message,
            },
            Instantiation::Failed(export, fault) => PolicyError::Start {
                path: policy.path.clone(),
                export: export.as_str(),
                cause: fault.to_string(),
            },
        })?;
        policy.park(live);
        Ok(policy)
    }

    /// The policy's file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Asks about a command; any failure denies.
    pub(crate) async fn check_command(&self, command: &Command) -> Result<Verdict, String> {
        self.call(Call::Command(command)).await
    }

    /// Asks about a data forward; any failure denies.
    pub(crate) async fn check_forward(&self, forward: &DataForward) -> Result<Verdict, String> {
        self.call(Call::Forward(forward)).await
    }

    /// Runs one check: `Ok` with the policy's verdict, or `Err` with the deny reason of a
    /// failure (already logged).
    async fn call(&self, call: Call<'_>) -> Result<Verdict, String> {
        let export = match call {
            Call::Command(_) => Export::CheckCommand,
            Call::Forward(_) => Export::CheckForward,
        };
        // Never closed, so acquiring cannot fail; should it, fail closed all the same.
        let Ok(_permit) = self.running.acquire().await else {
            return Err(format!("policy {} is shutting down", self.name));
        };
        let idle = self.lock_idle().pop();
        let mut live = match idle {
            Some(live) => live,
            None => match self.instantiate().await {
                Ok(live) => live,
                Err(Instantiation::Failed(export, fault)) => {
                    return Err(self.failed(export, &fault));
                }
                Err(Instantiation::Refused(message)) => {
                    let fault = Fault::Malformed(format!("configure refused: {message}"));
                    return Err(self.failed(Export::Configure, &fault));
                }
            },
        };
        let result = {
            let _running = self.arm(&mut live.store);
            match call {
                Call::Command(command) => {
                    live.bindings
                        .call_check_command(&mut live.store, command)
                        .await
                }
                Call::Forward(forward) => {
                    live.bindings
                        .call_check_forward(&mut live.store, forward)
                        .await
                }
            }
        };
        match result {
            Ok(verdict) => {
                self.park(live);
                Ok(verdict)
            }
            // `live` is dropped here: the next call gets a fresh instance.
            Err(error) => Err(self.failed(export, &self.fault(&error, &live.store))),
        }
    }

    /// A new instance, configured with the policy's settings.
    async fn instantiate(&self) -> Result<Live, Instantiation> {
        let state = PolicyState {
            memory_cap: self.limits.memory,
            memory_cap_hit: false,
            ticks_left: 0,
        };
        let mut store = Store::new(self.sandbox.engine(), state);
        store.limiter(|state| state as &mut dyn ResourceLimiter);
        store.epoch_deadline_callback(|mut store| {
            let state = store.data_mut();
            state.ticks_left = state.ticks_left.saturating_sub(1);
            if state.ticks_left == 0 {
                Ok(UpdateDeadline::Interrupt)
            } else {
                // Let other sessions' tasks run on this worker thread meanwhile. tokio's
                // own yield: wasmtime's plain one wakes the task at once, and tokio may poll
                // it again before anything else.
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });
        let bindings = {
            let _running = self.arm(&mut store);
            self.pre.instantiate_async(&mut store).await
        };
        let bindings = bindings
            .map_err(|e| Instantiation::Failed(Export::Configure, self.fault(&e, &store)))?;
        let configured = {
            let _running = self.arm(&mut store);
            bindings.call_configure(&mut store, &self.settings).await
        };
        match configured {
            Ok(Ok(())) => Ok(Live { store, bindings }),
            Ok(Err(message)) => Err(Instantiation::Refused(super::fault::one_line(
                &message, 300,
            ))),
            Err(e) => Err(Instantiation::Failed(
                Export::Configure,
                self.fault(&e, &store),
            )),
        }
    }

    /// Gives a call its deadline and keeps the epoch ticking while the guard lives.
    fn arm(&self, store: &mut Store<PolicyState>) -> super::sandbox::Running {
        store.data_mut().ticks_left = TICKS_PER_DEADLINE;
        store.data_mut().memory_cap_hit = false;
        store.set_epoch_deadline(1);
        self.sandbox.running()
    }

    fn fault(&self, error: &wasmtime::Error, store: &Store<PolicyState>) -> Fault {
        let hit = store.data().memory_cap_hit.then_some(self.limits.memory);
        Fault::classify(error, hit, self.limits.timeout)
    }

    /// Logs a failure and returns the reason the FTP client sees.
    fn failed(&self, export: Export, fault: &Fault) -> String {
        tracing::warn!(
            policy = %self.path.display(),
            export = export.as_str(),
            cause = %fault,
            "policy failed: denied; the next call gets a fresh instance"
        );
        format!("policy {} {}", self.name, fault.short())
    }

    fn park(&self, live: Live) {
        let mut idle = self.lock_idle();
        if idle.len() < MAX_IDLE {
            idle.push(live);
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Live>> {
        // A Vec of instances cannot be left half-updated by a panic elsewhere.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a new instance is not available.
enum Instantiation {
    /// `configure` returned an error.
    Refused(String),
    /// Instantiation or `configure` failed.
    Failed(Export, Fault),
}
