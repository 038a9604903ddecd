//! Config files: errors that name the file and the key, reading, and TOML
//! parsing into a raw type that denies unknown keys.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}, key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

impl ConfigError {
    /// A constructor for `Invalid` errors about `path`.
    pub fn invalid(path: &Path) -> impl Fn(&str, String) -> ConfigError + '_ {
        move |key, message| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            message,
        }
    }
}

/// Reads a config file, naming it if it cannot be read.
pub fn read_config(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Parses TOML into the raw config type `T` (which denies unknown keys).
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        // toml's message already names the key and line.
        message: e.to_string().trim_end().to_owned(),
    })
}
