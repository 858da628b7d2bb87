//! The one builder: a component's configuration, its [`Env`], and what it was given at
//! `Type::builder(…)`, built (and checked) by [`Builder::build`].

use std::fmt;

use crate::env::Env;
use crate::error::Result;

type Finish<T, C> = Box<dyn FnOnce(C, Env) -> Result<T> + Send + Sync>;

/// Builds a `T` configured by a `C`: the builder of every component that has a configuration
/// to check (`LocalOtpProvider::builder`, `LocalTotp::builder`, …).
///
/// Every such builder has the same three methods: [`env`](Builder::env) injects the clock and
/// random source, [`config`](Builder::config) replaces the whole configuration, and
/// [`build`](Builder::build) checks it ([`ErrorKind::Config`](crate::ErrorKind::Config)) and makes
/// the component. Each component adds setters for its own configuration's fields (for instance
/// `code_length` on `Builder<LocalOtpProvider, LocalOtpConfig>`, also named
/// [`LocalOtpBuilder`](crate::otp::LocalOtpBuilder)).
///
/// What the component was given at `builder(…)` (its store, its server secret, …) is held
/// inside and never shown: `Debug` prints the configuration and the environment only.
pub struct Builder<T, C> {
    pub(crate) config: C,
    env: Env,
    finish: Finish<T, C>,
}

impl<T, C> Builder<T, C> {
    /// A builder starting from `config` on [`Env::system`]; `finish` checks and makes the
    /// component from the final configuration and environment.
    pub(crate) fn new(
        config: C,
        finish: impl FnOnce(C, Env) -> Result<T> + Send + Sync + 'static,
    ) -> Self {
        Builder {
            config,
            env: Env::system(),
            finish: Box::new(finish),
        }
    }

    /// Runs on this clock and random source (default: [`Env::system`]). Give the state store
    /// the same environment, so expiry and the component agree on the time.
    pub fn env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: C) -> Self {
        self.config = config;
        self
    }

    /// Checks the configuration ([`ErrorKind::Config`](crate::ErrorKind::Config)) and builds
    /// the component.
    pub fn build(self) -> Result<T> {
        (self.finish)(self.config, self.env)
    }
}

impl<T, C: fmt::Debug> fmt::Debug for Builder<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::error::Error;
    use crate::secret::Secret;

    #[derive(Debug)]
    struct Made {
        limit: u32,
        at: u64,
        key_len: usize,
    }

    fn builder(secret: Secret) -> Builder<Made, u32> {
        Builder::new(3, move |limit, env| {
            if limit == 0 {
                return Err(Error::config("limit must be at least one"));
            }
            Ok(Made {
                limit,
                at: env.unix_seconds(),
                key_len: secret.len(),
            })
        })
    }

    #[test]
    fn build_sees_the_last_config_and_env() {
        let made = builder(Secret::new([1u8; 16]))
            .config(9)
            .env(Env::system().with_clock(Arc::new(ManualClock::at_unix(42))))
            .build()
            .unwrap();
        assert_eq!((made.limit, made.at, made.key_len), (9, 42, 16));
        let err = builder(Secret::new([1u8; 16]))
            .config(0)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), &crate::ErrorKind::Config);
    }

    #[test]
    fn debug_hides_what_the_builder_was_given() {
        let shown = format!("{:?}", builder(Secret::new(*b"super-secret-key")));
        assert!(
            shown.starts_with("Builder { config: 3, env: Env"),
            "{shown}"
        );
        assert!(!shown.contains("super-secret"), "{shown}");
    }
}
