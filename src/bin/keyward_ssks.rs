//! `keyward-ssks`: a self-hosted SSKS-compatible 2-man-rule server, configured from the
//! environment, with durable storage on PostgreSQL.
//!
//! ```text
//! KEYWARD_SSKS_APP_ID=…  KEYWARD_SSKS_API_KEY=…  DATABASE_URL=postgres://…  \
//! KEYWARD_SSKS_SENDER=twilio-sms  TWILIO_ACCOUNT_SID=…  TWILIO_AUTH_TOKEN=…  TWILIO_SMS_FROM=+1…  \
//!   keyward-ssks
//! ```
//!
//! | variable | meaning |
//! | --- | --- |
//! | `KEYWARD_SSKS_APP_ID` | the app id clients send (`X-SEALD-APPID`); required |
//! | `KEYWARD_SSKS_API_KEY` | the key the host's backend sends (`X-SEALD-APIKEY`); required, 16 bytes or more |
//! | `KEYWARD_SSKS_LISTEN` | address to listen on (default `127.0.0.1:8700`; put TLS in front) |
//! | `DATABASE_URL` | PostgreSQL for everything (identities survive restarts); required unless `KEYWARD_SSKS_MEMORY=1` |
//! | `DATABASE_SCHEMA` | schema of keyward's table (default `keyward_ssks`) |
//! | `DATABASE_POOL_SIZE` | connections at most (default 16) |
//! | `REDIS_URL` | optional: sessions and challenges on Redis, identities stay on PostgreSQL |
//! | `REDIS_PREFIX` | key prefix on Redis (default `keyward-ssks:`) |
//! | `KEYWARD_SSKS_SENDER` | `twilio-sms` (with `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN` or `TWILIO_API_KEY_SID` + `TWILIO_API_KEY_SECRET`, and `TWILIO_SMS_FROM`) or `console` (development: codes on standard error) |
//! | `KEYWARD_SSKS_MEMORY` | `1`: keep everything in memory (development only: a restart loses every identity) |
//! | `KEYWARD_SSKS_CORS_ORIGINS` | optional: comma-separated web origins (`https://app.example.com`) whose pages may call the front endpoints (Seald's browser plugin); none by default |
//!
//! It prints one line when it listens (`keyward-ssks listening on http://…`) and never prints a
//! URL's password, the API key or a challenge (except with the `console` sender).

use std::net::SocketAddr;
use std::sync::Arc;

use keyward::keysplit::local::LocalKeySplitStore;
use keyward::keysplit::server::{ServerConfig, serve};
use keyward::otp::{CodeSender, ConsoleSender, SmsFrom, TwilioSmsConfig, TwilioSmsSender};
use keyward::store::{
    MemoryStore, PostgresConfig, PostgresStore, RedisConfig, RedisStore, StateStore, Stores,
};
use keyward::twilio::TwilioCredentials;
use keyward::{Error, Result};

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn required(name: &str) -> Result<String> {
    var(name).ok_or_else(|| Error::config(format!("{name} is not set")))
}

async fn state() -> Result<(Arc<dyn StateStore>, String)> {
    let durable: Arc<dyn StateStore>;
    let mut description;
    match var("DATABASE_URL") {
        Some(url) => {
            let mut config = PostgresConfig::new(url)
                .schema(var("DATABASE_SCHEMA").unwrap_or_else(|| "keyward_ssks".to_owned()));
            if let Some(size) = var("DATABASE_POOL_SIZE") {
                let size = size
                    .parse()
                    .map_err(|_| Error::config("DATABASE_POOL_SIZE is not a number"))?;
                config = config.pool_size(size);
            }
            let store = PostgresStore::connect(config).await?;
            description = format!("{store:?}");
            durable = Arc::new(store);
        }
        None if var("KEYWARD_SSKS_MEMORY").as_deref() == Some("1") => {
            description = "memory (development only: a restart loses every identity)".to_owned();
            durable = Arc::new(MemoryStore::new());
        }
        None => {
            return Err(Error::config(
                "DATABASE_URL is not set (or set KEYWARD_SSKS_MEMORY=1 for a development server)",
            ));
        }
    }
    let Some(url) = var("REDIS_URL") else {
        return Ok((durable, description));
    };
    let redis = RedisStore::connect(
        RedisConfig::new(url)
            .prefix(var("REDIS_PREFIX").unwrap_or_else(|| "keyward-ssks:".to_owned())),
    )
    .await?;
    description = format!("ephemeral: {redis:?}, durable: {description}");
    Ok((
        Arc::new(Stores::split(Arc::new(redis), durable)),
        description,
    ))
}

fn sender() -> Result<Arc<dyn CodeSender>> {
    match var("KEYWARD_SSKS_SENDER").as_deref() {
        Some("twilio-sms") => {
            let from = required("TWILIO_SMS_FROM")?;
            let from = if from.starts_with("MG") {
                SmsFrom::MessagingService(from)
            } else {
                SmsFrom::Number(from)
            };
            let config = TwilioSmsConfig::new(TwilioCredentials::from_env()?, from)?;
            Ok(Arc::new(TwilioSmsSender::new(config)?))
        }
        Some("console") => Ok(Arc::new(ConsoleSender)),
        _ => Err(Error::config(
            "KEYWARD_SSKS_SENDER must be `twilio-sms` or `console`",
        )),
    }
}

async fn run() -> Result<()> {
    let app_id = required("KEYWARD_SSKS_APP_ID")?;
    let api_key = required("KEYWARD_SSKS_API_KEY")?;
    if api_key.len() < 16 {
        return Err(Error::config(
            "KEYWARD_SSKS_API_KEY must be at least 16 bytes",
        ));
    }
    let listen: SocketAddr = var("KEYWARD_SSKS_LISTEN")
        .unwrap_or_else(|| "127.0.0.1:8700".to_owned())
        .parse()
        .map_err(|_| Error::config("KEYWARD_SSKS_LISTEN is not an address (host:port)"))?;
    let sender = sender()?;
    let (state, description) = state().await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::config(format!("cannot listen on {listen}")).with_source(e))?;
    let local = LocalKeySplitStore::new(state, sender);
    let mut config = ServerConfig::new(app_id, api_key);
    if let Some(origins) = var("KEYWARD_SSKS_CORS_ORIGINS") {
        config = config
            .cors_origins(origins.split(',').map(str::trim).filter(|o| !o.is_empty()))
            .map_err(|_| {
                Error::config(
                    "KEYWARD_SSKS_CORS_ORIGINS must be comma-separated origins (https://app.example.com)",
                )
            })?;
    }
    let server = serve(listener, local, config).await?;
    println!(
        "keyward-ssks listening on {} (state: {description})",
        server.base_url()
    );
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keyward-ssks: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyward-ssks: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
