//! Public-key authentication from identity files.

use std::path::PathBuf;
use std::sync::Arc;

use russh::client::{self, AuthResult};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};

use super::error::SshError;
use super::handler::ClientHandler;
use super::options::{SshOptions, default_ssh_dir};

/// Loads the identities to offer, as `(name for messages, key)`. Configured files must all
/// load; among the default ones, unusable files are skipped with a warning.
pub(crate) fn load_identities(
    opts: &SshOptions,
) -> Result<Vec<(String, Arc<PrivateKey>)>, SshError> {
    let (files, explicit) = opts.effective_identity_files();
    if files.is_empty() {
        let dir = default_ssh_dir();
        return Err(SshError::NoIdentity {
            searched: ["id_ed25519", "id_ecdsa", "id_rsa"]
                .iter()
                .map(|n| dir.join(n).display().to_string())
                .collect(),
        });
    }
    let mut keys = Vec::new();
    let mut first_error = None;
    for path in files {
        match load_key(&path) {
            Ok(k) => keys.push((path.display().to_string(), Arc::new(k))),
            Err(e) if explicit => return Err(e),
            Err(e) => {
                tracing::warn!("{e}");
                first_error.get_or_insert(e);
            }
        }
    }
    match (keys.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        _ => Ok(keys),
    }
}

fn load_key(path: &PathBuf) -> Result<PrivateKey, SshError> {
    let err = |reason: String| SshError::KeyLoad {
        path: path.clone(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => err("no such file".into()),
        std::io::ErrorKind::PermissionDenied => err("permission denied".into()),
        _ => err(e.to_string()),
    })?;
    russh::keys::decode_secret_key(&text, None).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => err(
            "the key is passphrase-protected, which is not supported; load it into a key without passphrase (ssh-keygen -p) or use another key".into(),
        ),
        russh::keys::Error::UnsupportedKeyType {
            key_type_string, ..
        } => err(format!("unsupported key type {key_type_string}")),
        e => err(format!("not a usable private key ({e})")),
    })
}

/// Offers each key in turn; returns the one the server accepted.
pub(crate) async fn authenticate(
    handle: &mut client::Handle<ClientHandler>,
    opts: &SshOptions,
    keys: Vec<(String, Arc<PrivateKey>)>,
) -> Result<Arc<PrivateKey>, SshError> {
    let mut tried = Vec::new();
    let mut rsa_hash = None;
    for (name, key) in keys {
        let hash = if key.algorithm().is_rsa() {
            if rsa_hash.is_none() {
                // None (no server-sig-algs) means an old server: legacy ssh-rsa.
                rsa_hash = Some(handle.best_supported_rsa_hash().await?.flatten());
            }
            rsa_hash.flatten()
        } else {
            None
        };
        let with_hash = PrivateKeyWithHashAlg::new(Arc::clone(&key), hash);
        match handle
            .authenticate_publickey(opts.user.clone(), with_hash)
            .await?
        {
            AuthResult::Success => return Ok(key),
            AuthResult::Failure {
                partial_success: true,
                remaining_methods,
            } => {
                let remaining: Vec<&str> = remaining_methods.iter().map(|m| m.into()).collect();
                return Err(SshError::AuthPartial {
                    user: opts.user.clone(),
                    host: opts.host.clone(),
                    remaining: remaining.join(","),
                });
            }
            AuthResult::Failure { .. } => {
                tracing::debug!(key = %name, "key refused");
                tried.push(name);
            }
        }
    }
    Err(SshError::AuthFailed {
        user: opts.user.clone(),
        host: opts.host.clone(),
        tried,
    })
}
