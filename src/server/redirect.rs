//! `--redirect`: blob GETs answered with presigned S3 URLs, and the
//! start-up checks around it (S3 storage, an endpoint off the registry's
//! own domain).

use registry_storage::{OpendalStore, RedirectOptions};

use super::config::Config;

/// `store` with redirects on if configured. Refuses a store that is not on
/// S3, an expiry S3 does not sign, and an endpoint whose host is one the
/// registry is known by (or a subdomain of one), since clients following a
/// redirect send that host's credentials along.
pub async fn apply(config: &Config, store: OpendalStore) -> Result<OpendalStore, String> {
    let Some((expiry, endpoint)) = &config.redirect else {
        return Ok(store);
    };
    let mut options = RedirectOptions::new(*expiry);
    if let Some(endpoint) = endpoint {
        options = options.with_endpoint(endpoint.as_str());
    }
    let store = store
        .with_redirects(&options)
        .await
        .map_err(|e| format!("--redirect: {}", e.message()))?;
    let endpoint = store.redirect_endpoint().unwrap_or("");
    let host = endpoint_host(endpoint);
    if let Some(own) = own_hosts(config)
        .into_iter()
        .find(|own| registry_http::same_or_subdomain(&host, own))
    {
        return Err(format!(
            "--redirect: the presigned URLs would point at {endpoint}, whose host is the registry's own ({own}) or a subdomain of it: clients would send their registry credentials there; give --redirect-endpoint a host of its own"
        ));
    }
    tracing::info!(
        expiry = ?expiry,
        endpoint = if endpoint.is_empty() { "AWS" } else { endpoint },
        "blob GETs redirected to presigned URLs"
    );
    Ok(store)
}

/// The host of an endpoint URL ("" when it has none).
fn endpoint_host(endpoint: &str) -> String {
    endpoint
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_ascii_lowercase))
        .unwrap_or_default()
}

/// The hosts the registry is known to answer as: the listen address's,
/// unless it is a wildcard, and the built-in token issuer's realm, which
/// is this server. (Names only a proxy in front knows are not knowable
/// here; docs/OPERATIONS.md says to keep the bucket off them.)
fn own_hosts(config: &Config) -> Vec<String> {
    let mut hosts = Vec::new();
    let listen = config.listen.as_str();
    if let Some((host, _port)) = listen.rsplit_once(':') {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let wildcard = host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        if !host.is_empty() && !wildcard {
            hosts.push(host.to_ascii_lowercase());
        }
    }
    if config.auth.token_keys.is_none()
        && let Some(realm) = &config.auth.token_realm
    {
        let host = endpoint_host(realm);
        if !host.is_empty() {
            hosts.push(host);
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::config::Settings;

    fn config(toml: &str) -> Config {
        Config::resolve(Settings::from_toml(toml).unwrap())
    }

    #[test]
    fn own_hosts_are_the_listen_host_and_the_built_in_realm() {
        let c = config(r#"listen = "Registry.example.com:443""#);
        assert_eq!(own_hosts(&c), ["registry.example.com"]);
        assert!(own_hosts(&config(r#"listen = "0.0.0.0:5000""#)).is_empty());
        assert!(own_hosts(&config(r#"listen = "[::]:5000""#)).is_empty());
        assert_eq!(own_hosts(&config(r#"listen = "[::1]:5000""#)), ["::1"]);
        let c = config(
            "listen = \"0.0.0.0:5000\"\n[auth]\ntoken_realm = \"https://reg.example.com/token\"",
        );
        assert_eq!(own_hosts(&c), ["reg.example.com"]);
        // An external issuer's realm is another service.
        let c = config(
            "listen = \"0.0.0.0:5000\"\n[auth]\ntoken_realm = \"https://auth.example.com/token\"\ntoken_keys = \"/keys.pem\"",
        );
        assert!(own_hosts(&c).is_empty());
    }

    #[test]
    fn endpoint_hosts() {
        assert_eq!(endpoint_host("http://127.0.0.1:9000"), "127.0.0.1");
        assert_eq!(endpoint_host("https://S3.example.com/"), "s3.example.com");
        assert_eq!(endpoint_host(""), "");
    }
}
