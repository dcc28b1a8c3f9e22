//! A response, read whole.

/// A response: status, headers and the whole body (empty for `HEAD`).
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A header that must be present.
    #[track_caller]
    pub fn must(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header in {self:?}"))
    }

    /// Whether a header is present.
    pub fn has(&self, name: &str) -> bool {
        self.headers.contains_key(name)
    }

    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    /// `Content-Type` without parameters.
    #[track_caller]
    pub fn content_type(&self) -> &str {
        self.must("content-type").split(';').next().unwrap().trim()
    }

    /// The `code`s of an OCI error body, `{"errors":[{"code":...}]}`.
    #[track_caller]
    pub fn error_codes(&self) -> Vec<String> {
        let json = self.json();
        let errors = json["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("not an error body: {json}"));
        errors
            .iter()
            .map(|e| {
                assert!(e["message"].is_string(), "an error has a message: {json}");
                e["code"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    /// Assert the status and that the body is the spec's JSON error body
    /// with the one error `code`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?} {:?}", self.text());
        assert_eq!(self.content_type(), "application/json", "{self:?}");
        assert_eq!(self.error_codes(), [code], "{:?}", self.text());
    }

    /// The URL of a `Link: <url>; rel="next"` header, if any.
    #[track_caller]
    pub fn next_link(&self) -> Option<String> {
        self.header("link").map(|l| {
            assert!(l.ends_with(">; rel=\"next\""), "Link: {l}");
            l[1..l.find('>').unwrap()].to_owned()
        })
    }

    /// The `Location`, which must be a URL of this registry (absolute or a
    /// path), as a path.
    #[track_caller]
    pub fn location(&self) -> String {
        let location = self.must("location");
        let path = match location
            .strip_prefix("http://")
            .or_else(|| location.strip_prefix("https://"))
        {
            Some(rest) => &rest[rest.find('/').unwrap()..],
            None => location,
        };
        assert!(path.starts_with("/v2/"), "Location {location}");
        path.to_owned()
    }
}
