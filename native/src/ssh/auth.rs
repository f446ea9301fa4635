//! Authentication in OpenSSH's order and with its messages: ssh-agent keys, then identity
//! files (passphrases asked when their turn comes), then keyboard-interactive and
//! password, as `PreferredAuthentications` orders them and the server allows.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use russh::client::{self, AuthResult, KeyboardInteractiveAuthResponse};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{Certificate, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};

use super::error::SshError;
use super::handler::ClientHandler;
use super::options::{AgentSocket, SshOptions, default_ssh_dir};
use super::prompt;

/// What logged a connection in, so that a pool's later connections can log in again
/// without asking the user twice.
#[derive(Clone)]
pub(crate) enum Credential {
    /// A private key from a file.
    Key(Arc<PrivateKey>),
    /// A private key with the OpenSSH user certificate beside it (`KEY-cert.pub`).
    Certificate(Arc<PrivateKey>, Box<Certificate>),
    /// A key held by the agent at this socket.
    Agent(PathBuf, PublicKey),
    /// A password.
    Password(String),
    /// Keyboard-interactive answers (one-time codes cannot be replayed).
    Interactive,
    /// The server let us in without a method (`none`).
    Nothing,
}

/// An identity file, loaded or waiting for its passphrase.
enum Identity {
    Loaded(String, Arc<PrivateKey>),
    /// Encrypted: the passphrase is asked when its turn comes.
    Encrypted(PathBuf, Option<PublicKey>),
}

/// What to try, prepared before any network traffic so that a bad identity file costs no
/// round trip.
pub(crate) struct Login {
    identities: Vec<Identity>,
    pinned: Option<Credential>,
}

impl Login {
    /// Reuses what logged the first connection in.
    pub(crate) fn pinned(credential: Credential) -> Self {
        Self {
            identities: Vec::new(),
            pinned: Some(credential),
        }
    }

    /// Loads the identity files. Configured files must exist and be keys; among the default
    /// ones, unusable files are skipped with a warning.
    pub(crate) fn prepare(opts: &SshOptions) -> Result<Self, SshError> {
        let (files, explicit) = opts.effective_identity_files();
        let agent_available = agent_path(&opts.auth.agent).is_some();
        if files.is_empty() && !agent_available && opts.auth.preferred.len() == 1 {
            let dir = default_ssh_dir();
            return Err(SshError::NoIdentity {
                searched: ["id_ed25519", "id_ecdsa", "id_rsa"]
                    .iter()
                    .map(|n| dir.join(n).display().to_string())
                    .collect(),
            });
        }
        let mut identities = Vec::new();
        for path in files {
            match load_key(&path, None) {
                Ok(k) => identities.push(Identity::Loaded(path.display().to_string(), Arc::new(k))),
                Err(LoadError::Encrypted) => {
                    if prompt::asker().is_none() && !agent_available && explicit {
                        return Err(SshError::KeyLoad {
                            path,
                            reason: "the key is passphrase-protected and there is no terminal or SSH_ASKPASS to ask for the passphrase".into(),
                        });
                    }
                    let public = read_public(&path);
                    identities.push(Identity::Encrypted(path, public));
                }
                Err(LoadError::Other(e)) if explicit => return Err(e),
                Err(LoadError::Other(e)) => tracing::warn!("{e}"),
            }
        }
        Ok(Self {
            identities,
            pinned: None,
        })
    }
}

enum LoadError {
    Encrypted,
    Other(SshError),
}

fn load_key(path: &Path, passphrase: Option<&str>) -> Result<PrivateKey, LoadError> {
    let err = |reason: String| {
        LoadError::Other(SshError::KeyLoad {
            path: path.to_path_buf(),
            reason,
        })
    };
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => err("no such file".into()),
        std::io::ErrorKind::PermissionDenied => err("permission denied".into()),
        _ => err(e.to_string()),
    })?;
    russh::keys::decode_secret_key(&text, passphrase).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => LoadError::Encrypted,
        russh::keys::Error::UnsupportedKeyType {
            key_type_string, ..
        } => err(format!("unsupported key type {key_type_string}")),
        e if passphrase.is_some() => err(format!("incorrect passphrase ({e})")),
        e => err(format!("not a usable private key ({e})")),
    })
}

/// The `.pub` file beside a private key, if readable.
fn read_public(path: &Path) -> Option<PublicKey> {
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    let text = std::fs::read_to_string(pub_path).ok()?;
    PublicKey::from_openssh(text.trim()).ok()
}

fn agent_path(agent: &AgentSocket) -> Option<PathBuf> {
    match agent {
        AgentSocket::Disabled => None,
        AgentSocket::Path(p) => Some(p.clone()),
        AgentSocket::FromEnv => std::env::var_os("SSH_AUTH_SOCK")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    }
}

/// State of one authentication conversation.
struct Auth<'a> {
    handle: &'a mut client::Handle<ClientHandler>,
    opts: &'a SshOptions,
    prompting: &'a AtomicBool,
    rsa_hash: Option<Option<HashAlg>>,
    /// Methods the server still accepts, as it last said.
    allowed: Vec<String>,
    /// Public keys already offered (the agent's, so a file with the same key is skipped).
    offered: Vec<PublicKey>,
}

/// Logs in; returns what worked. On failure, OpenSSH's `Permission denied (methods).`
pub(crate) async fn authenticate(
    handle: &mut client::Handle<ClientHandler>,
    opts: &SshOptions,
    login: Login,
    prompting: &AtomicBool,
) -> Result<Credential, SshError> {
    let mut auth = Auth {
        handle,
        opts,
        prompting,
        rsa_hash: None,
        allowed: Vec::new(),
        offered: Vec::new(),
    };
    // `none` first, as OpenSSH: it tells which methods the server accepts.
    match auth.handle.authenticate_none(opts.user.clone()).await? {
        AuthResult::Success => return Ok(Credential::Nothing),
        AuthResult::Failure {
            remaining_methods, ..
        } => auth.allowed = names(&remaining_methods),
    }
    if let Some(credential) = login.pinned {
        return auth.replay(credential).await;
    }
    let mut identities = Some(login.identities);
    for method in opts.auth.preferred.clone() {
        if !auth.allowed.contains(&method) {
            continue;
        }
        let result = match method.as_str() {
            "publickey" if opts.auth.pubkey => {
                auth.publickey(identities.take().unwrap_or_default())
                    .await?
            }
            "keyboard-interactive" if opts.auth.kbd_interactive && !opts.auth.batch_mode => {
                auth.keyboard_interactive().await?
            }
            "password" if opts.auth.password && !opts.auth.batch_mode => auth.password().await?,
            _ => None,
        };
        if let Some(credential) = result {
            return Ok(credential);
        }
    }
    Err(SshError::AuthFailed {
        user: opts.user.clone(),
        host: opts.host.clone(),
        methods: auth.allowed.join(","),
    })
}

fn names(methods: &russh::MethodSet) -> Vec<String> {
    methods.iter().map(|m| <&str>::from(m).to_owned()).collect()
}

impl Auth<'_> {
    /// Reads a method's result: `Some` on success; `None` (after noting what the server
    /// allows now) on failure; an error when a further factor is required.
    fn outcome(&mut self, result: AuthResult) -> Result<bool, SshError> {
        match result {
            AuthResult::Success => Ok(true),
            AuthResult::Failure {
                remaining_methods,
                partial_success,
            } => {
                self.allowed = names(&remaining_methods);
                if partial_success {
                    // A further factor: the next methods in the list go on with it.
                    tracing::info!(
                        "Authenticated using a method with partial success; continuing with {}",
                        self.allowed.join(",")
                    );
                }
                Ok(false)
            }
        }
    }

    async fn rsa_hash(&mut self, key: &PublicKey) -> Result<Option<HashAlg>, SshError> {
        if !key.algorithm().is_rsa() {
            return Ok(None);
        }
        if self.rsa_hash.is_none() {
            // None (no server-sig-algs) means an old server: legacy ssh-rsa.
            self.rsa_hash = Some(self.handle.best_supported_rsa_hash().await?.flatten());
        }
        Ok(self.rsa_hash.flatten())
    }

    async fn publickey(
        &mut self,
        identities: Vec<Identity>,
    ) -> Result<Option<Credential>, SshError> {
        let configured: Vec<PublicKey> = identities
            .iter()
            .filter_map(|i| match i {
                Identity::Loaded(_, k) => Some(k.public_key().clone()),
                Identity::Encrypted(_, p) => p.clone(),
            })
            .collect();
        if let Some(socket) = agent_path(&self.opts.auth.agent)
            && let Some(c) = self.agent(&socket, &configured).await?
        {
            return Ok(Some(c));
        }
        for identity in identities {
            if !self.allowed.iter().any(|m| m == "publickey") {
                break;
            }
            let (name, key) = match identity {
                Identity::Loaded(name, key) => (name, key),
                Identity::Encrypted(path, public) => {
                    if public.as_ref().is_some_and(|p| self.offered.contains(p)) {
                        continue;
                    }
                    match self.decrypt(&path).await {
                        Some(key) => (path.display().to_string(), Arc::new(key)),
                        None => continue,
                    }
                }
            };
            if self.offered.contains(key.public_key()) {
                continue;
            }
            self.offered.push(key.public_key().clone());
            // As ssh does: the certificate beside the key first, then the key itself.
            if let Some(cert) = certificate_beside(&name, key.public_key()) {
                tracing::debug!("Offering certificate: {name}-cert.pub");
                let result = self
                    .handle
                    .authenticate_openssh_cert(
                        self.opts.user.clone(),
                        Arc::clone(&key),
                        cert.clone(),
                    )
                    .await?;
                if self.outcome(result)? {
                    return Ok(Some(Credential::Certificate(key, Box::new(cert))));
                }
            }
            tracing::debug!("Offering public key: {name}");
            let hash = self.rsa_hash(key.public_key()).await?;
            let with_hash = PrivateKeyWithHashAlg::new(Arc::clone(&key), hash);
            let result = self
                .handle
                .authenticate_publickey(self.opts.user.clone(), with_hash)
                .await?;
            if self.outcome(result)? {
                return Ok(Some(Credential::Key(key)));
            }
        }
        Ok(None)
    }

    /// OpenSSH asks up to NumberOfPasswordPrompts times; a wrong or missing passphrase
    /// skips the key.
    async fn decrypt(&mut self, path: &Path) -> Option<PrivateKey> {
        let prompt = format!("Enter passphrase for key '{}': ", path.display());
        for _ in 0..self.opts.auth.password_prompts.max(1) {
            if self.opts.auth.batch_mode {
                return None;
            }
            let answer = self.ask(prompt.clone(), false).await?;
            match load_key(path, Some(&answer)) {
                Ok(key) => return Some(key),
                Err(LoadError::Encrypted | LoadError::Other(_)) => {
                    tracing::debug!("bad passphrase given, try again...");
                }
            }
        }
        tracing::warn!(
            "Load key \"{}\": incorrect passphrase supplied to decrypt private key",
            path.display()
        );
        None
    }

    async fn agent(
        &mut self,
        socket: &Path,
        configured: &[PublicKey],
    ) -> Result<Option<Credential>, SshError> {
        let mut agent = match AgentClient::connect_uds(socket).await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!("Error connecting to agent {}: {e}", socket.display());
                return Ok(None);
            }
        };
        let identities = match agent.request_identities().await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::debug!("agent {}: {e}", socket.display());
                return Ok(None);
            }
        };
        for identity in identities {
            let AgentIdentity::PublicKey { key, comment } = identity else {
                continue;
            };
            if self.opts.auth.identities_only && !configured.contains(&key) {
                continue;
            }
            tracing::debug!("Offering public key: {comment} (agent)");
            self.offered.push(key.clone());
            let hash = self.rsa_hash(&key).await?;
            let result = self
                .handle
                .authenticate_publickey_with(self.opts.user.clone(), key.clone(), hash, &mut agent)
                .await
                .map_err(|e| SshError::Agent(e.to_string()))?;
            if self.outcome(result)? {
                return Ok(Some(Credential::Agent(socket.to_path_buf(), key)));
            }
        }
        Ok(None)
    }

    async fn password(&mut self) -> Result<Option<Credential>, SshError> {
        let prompt = format!("{}@{}'s password: ", self.opts.user, self.opts.host);
        for attempt in 0..self.opts.auth.password_prompts {
            if !self.allowed.iter().any(|m| m == "password") {
                break;
            }
            if attempt > 0 {
                let _ = writeln!(std::io::stderr(), "Permission denied, please try again.");
            }
            let Some(password) = self.ask(prompt.clone(), false).await else {
                break;
            };
            let result = self
                .handle
                .authenticate_password(self.opts.user.clone(), password.clone())
                .await?;
            if self.outcome(result)? {
                return Ok(Some(Credential::Password(password)));
            }
        }
        Ok(None)
    }

    async fn keyboard_interactive(&mut self) -> Result<Option<Credential>, SshError> {
        for _ in 0..self.opts.auth.password_prompts {
            if !self.allowed.iter().any(|m| m == "keyboard-interactive") {
                break;
            }
            let mut reply = self
                .handle
                .authenticate_keyboard_interactive_start(self.opts.user.clone(), None)
                .await?;
            loop {
                match reply {
                    KeyboardInteractiveAuthResponse::Success => {
                        return Ok(Some(Credential::Interactive));
                    }
                    KeyboardInteractiveAuthResponse::Failure {
                        remaining_methods, ..
                    } => {
                        self.allowed = names(&remaining_methods);
                        break;
                    }
                    KeyboardInteractiveAuthResponse::InfoRequest {
                        name,
                        instructions,
                        prompts,
                    } => {
                        for text in [&name, &instructions] {
                            if !text.is_empty() {
                                let _ = writeln!(std::io::stderr(), "{text}");
                            }
                        }
                        let mut answers = Vec::new();
                        for p in prompts {
                            // A prompt nobody answers ends this method, as in OpenSSH.
                            let Some(a) = self.ask(p.prompt, p.echo).await else {
                                return Ok(None);
                            };
                            answers.push(a);
                        }
                        reply = self
                            .handle
                            .authenticate_keyboard_interactive_respond(answers)
                            .await?;
                    }
                }
            }
        }
        Ok(None)
    }

    async fn replay(&mut self, credential: Credential) -> Result<Credential, SshError> {
        let user = self.opts.user.clone();
        let ok = match &credential {
            Credential::Key(key) => {
                let hash = self.rsa_hash(key.public_key()).await?;
                let k = PrivateKeyWithHashAlg::new(Arc::clone(key), hash);
                let r = self.handle.authenticate_publickey(user, k).await?;
                self.outcome(r)?
            }
            Credential::Certificate(key, cert) => {
                let r = self
                    .handle
                    .authenticate_openssh_cert(user, Arc::clone(key), (**cert).clone())
                    .await?;
                self.outcome(r)?
            }
            Credential::Agent(socket, key) => {
                let mut agent = AgentClient::connect_uds(socket)
                    .await
                    .map_err(|e| SshError::Agent(e.to_string()))?;
                let hash = self.rsa_hash(key).await?;
                let r = self
                    .handle
                    .authenticate_publickey_with(user, key.clone(), hash, &mut agent)
                    .await
                    .map_err(|e| SshError::Agent(e.to_string()))?;
                self.outcome(r)?
            }
            Credential::Password(p) => {
                let r = self.handle.authenticate_password(user, p.clone()).await?;
                self.outcome(r)?
            }
            Credential::Nothing => true,
            Credential::Interactive => false,
        };
        if ok {
            Ok(credential)
        } else {
            Err(SshError::AuthFailed {
                user: self.opts.user.clone(),
                host: self.opts.host.clone(),
                methods: self.allowed.join(","),
            })
        }
    }

    /// Asks the user, with the connect deadline paused meanwhile.
    async fn ask(&self, prompt: String, echo: bool) -> Option<String> {
        self.prompting.store(true, Ordering::SeqCst);
        let answer = prompt::ask(prompt, echo).await;
        self.prompting.store(false, Ordering::SeqCst);
        answer
    }
}

/// The OpenSSH user certificate `<identity>-cert.pub`, if there is one and it certifies
/// `public` (a stale or unreadable one is skipped with a debug line, as ssh does).
fn certificate_beside(identity: &str, public: &PublicKey) -> Option<Certificate> {
    let path = PathBuf::from(format!("{identity}-cert.pub"));
    if !path.exists() {
        return None;
    }
    match russh::keys::load_openssh_certificate(&path) {
        Ok(cert) if cert.public_key() == public.key_data() => Some(cert),
        Ok(_) => {
            tracing::debug!("{}: certifies another key; not offered", path.display());
            None
        }
        Err(e) => {
            tracing::debug!("{}: not a certificate: {e}", path.display());
            None
        }
    }
}
