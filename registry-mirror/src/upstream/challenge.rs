//! `WWW-Authenticate` challenges, parsed by RFC 9110's grammar:
//!
//! ```text
//! WWW-Authenticate = 1#challenge
//! challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param       = token BWS "=" BWS ( token / quoted-string )
//! ```
//!
//! Several challenges may share one header value, separated by commas like
//! their parameters: a token not followed by `=` starts the next challenge.
//! Quoted strings may hold commas and backslash escapes.

/// One challenge: the scheme (lowercased) and its parameters (names
/// lowercased, values unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (case-insensitive), if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        (self.pos > start).then(|| std::str::from_utf8(&self.s[start..self.pos]).unwrap_or(""))
    }

    fn quoted(&mut self) -> Result<String, String> {
        // At the opening quote.
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted string".to_owned()),
                Some(b'"') => {
                    self.pos += 1;
                    return String::from_utf8(out)
                        .map_err(|_| "quoted string is not UTF-8".to_owned());
                }
                Some(b'\\') => {
                    let escaped = self
                        .s
                        .get(self.pos + 1)
                        .copied()
                        .ok_or_else(|| "unterminated escape in quoted string".to_owned())?;
                    out.push(escaped);
                    self.pos += 2;
                }
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
    }
}

/// Parse one `WWW-Authenticate` header value into its challenges.
pub(crate) fn parse(value: &str) -> Result<Vec<Challenge>, String> {
    let mut c = Cursor {
        s: value.as_bytes(),
        pos: 0,
    };
    let mut challenges = Vec::new();
    loop {
        c.skip_ws_and_commas();
        if c.peek().is_none() {
            break;
        }
        let scheme = c
            .token()
            .ok_or_else(|| format!("expected an auth scheme at byte {}", c.pos))?;
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        c.skip_ws();
        if let Some(end) = token68_end(&c) {
            // `Scheme token68`: no parameters.
            c.pos = end;
            challenges.push(challenge);
            continue;
        }
        // Parameters until the end or the next challenge's scheme.
        loop {
            c.skip_ws_and_commas();
            let start = c.pos;
            let Some(name) = c.token() else {
                if c.peek().is_none() {
                    break;
                }
                return Err(format!("unexpected character at byte {}", c.pos));
            };
            c.skip_ws();
            if c.peek() != Some(b'=') {
                // The next challenge's scheme.
                c.pos = start;
                break;
            }
            c.pos += 1;
            c.skip_ws();
            let value = match c.peek() {
                Some(b'"') => c.quoted()?,
                _ => c
                    .token()
                    .ok_or_else(|| format!("expected a parameter value at byte {}", c.pos))?
                    .to_owned(),
            };
            challenge.params.push((name.to_ascii_lowercase(), value));
            c.skip_ws();
            match c.peek() {
                None | Some(b',') => {}
                Some(_) => return Err(format!("expected a comma at byte {}", c.pos)),
            }
        }
        challenges.push(challenge);
    }
    if challenges.is_empty() {
        return Err("no challenge".to_owned());
    }
    Ok(challenges)
}

/// Where a token68 at the cursor ends, if one is there: token68 characters,
/// optional `=` padding, then only whitespace before a comma or the end.
fn token68_end(c: &Cursor<'_>) -> Option<usize> {
    let mut pos = c.pos;
    while c.s.get(pos).copied().is_some_and(is_token68_char) {
        pos += 1;
    }
    if pos == c.pos {
        return None;
    }
    while c.s.get(pos) == Some(&b'=') {
        pos += 1;
    }
    let end = pos;
    while matches!(c.s.get(pos), Some(b' ' | b'\t')) {
        pos += 1;
    }
    matches!(c.s.get(pos), None | Some(b',')).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn docker_hub_bearer() {
        let v = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#;
        let cs = parse(v).unwrap();
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].scheme, "bearer");
        assert_eq!(
            params(&cs[0]),
            vec![
                ("realm", "https://auth.docker.io/token"),
                ("service", "registry.docker.io"),
                ("scope", "repository:library/alpine:pull"),
            ]
        );
    }

    #[test]
    fn commas_and_escapes_inside_quotes() {
        let v = r#"Bearer realm="http://h/t", scope="repository:a/b:pull,push" , error="say \"no\", \\ ok""#;
        let cs = parse(v).unwrap();
        assert_eq!(cs[0].param("scope"), Some("repository:a/b:pull,push"));
        assert_eq!(cs[0].param("ERROR"), Some(r#"say "no", \ ok"#));
        assert_eq!(cs[0].param("realm"), Some("http://h/t"));
    }

    #[test]
    fn tokens_spaces_and_case() {
        let cs = parse("BASIC Realm = registry , charset=UTF-8").unwrap();
        assert_eq!(cs[0].scheme, "basic");
        assert_eq!(
            params(&cs[0]),
            vec![("realm", "registry"), ("charset", "UTF-8")]
        );
    }

    #[test]
    fn several_challenges_in_one_value() {
        let v =
            r#"Basic realm="r, with comma", Bearer realm="http://t/token",service=s, Negotiate"#;
        let cs = parse(v).unwrap();
        let schemes: Vec<_> = cs.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, vec!["basic", "bearer", "negotiate"]);
        assert_eq!(cs[0].param("realm"), Some("r, with comma"));
        assert_eq!(cs[1].param("service"), Some("s"));
        assert!(cs[2].params.is_empty());
    }

    #[test]
    fn token68_is_skipped() {
        let cs = parse("Negotiate abc/def==, Basic realm=x").unwrap();
        assert_eq!(cs.len(), 2);
        assert!(cs[0].params.is_empty());
        assert_eq!(cs[1].param("realm"), Some("x"));
        let cs = parse("Custom YWJj=").unwrap();
        assert_eq!(cs.len(), 1);
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        for bad in [
            "",
            "   ",
            r#"Bearer realm="unterminated"#,
            r#"Bearer realm="esc\"#,
            "Bearer realm=\"a\" junk",
            "Bearer realm=\"a\" ;",
            "=x",
            "Bearer realm=@",
            "Bearer realm=,scope=x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
