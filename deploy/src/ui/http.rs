//! Requests and responses as the pages see them: plain data, independent of the HTTP
//! server, so every route is a pure function a unit test can call.

/// The most a POST body may hold: the kill forms carry an id and a flag.
pub(crate) const MAX_FORM_BYTES: usize = 4096;

/// The request methods the UI answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// GET (and HEAD, answered the same).
    Get,
    /// POST: the kill actions.
    Post,
    /// Anything else: 405.
    Other,
}

/// A request: its method, path, parameters (query string, then form body) and whether it
/// comes from one of this UI's own pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UiRequest {
    /// The method.
    pub(crate) method: Method,
    /// The path, without the query string, with one trailing `/` dropped (`/app/` is `/app`).
    pub(crate) path: String,
    /// Query and form parameters in order, percent-decoded.
    pub(crate) params: Vec<(String, String)>,
    /// The browser says the request comes from a page of this same origin: `Origin` or
    /// `Referer` names the `Host` it was sent to, or `Sec-Fetch-Site: same-origin`. The
    /// kill actions require it (CSRF protection Spark's UI lacks).
    pub(crate) same_origin: bool,
}

impl UiRequest {
    /// A request of `method` for `url` (path and query string).
    pub(crate) fn new(method: Method, url: &str) -> UiRequest {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let path = match path.strip_suffix('/') {
            Some(stripped) if !stripped.is_empty() => stripped.to_string(),
            _ => path.to_string(),
        };
        UiRequest {
            method,
            path,
            params: parse_params(query),
            same_origin: false,
        }
    }

    /// The first parameter called `name`.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// `a=1&b=x%20y` as pairs; `+` is a space, as in forms. A malformed escape stays as it is.
pub(crate) fn parse_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response: status, content type and body, or a redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UiResponse {
    /// The HTTP status code.
    pub(crate) status: u16,
    /// The `Content-Type`.
    pub(crate) content_type: &'static str,
    /// The body.
    pub(crate) body: Vec<u8>,
    /// A `Location` to redirect to (with status 303).
    pub(crate) location: Option<String>,
}

impl UiResponse {
    /// 200 with an HTML page.
    pub(crate) fn html(page: maud::Markup) -> UiResponse {
        UiResponse::with(
            200,
            "text/html; charset=utf-8",
            page.into_string().into_bytes(),
        )
    }

    /// 200 with a JSON document.
    pub(crate) fn json(value: &impl serde::Serialize) -> UiResponse {
        match serde_json::to_vec_pretty(value) {
            Ok(body) => UiResponse::with(200, "application/json", body),
            Err(e) => UiResponse::text(500, format!("Could not encode the answer: {e}")),
        }
    }

    /// `status` with a plain-text body.
    pub(crate) fn text(status: u16, body: impl Into<String>) -> UiResponse {
        UiResponse::with(
            status,
            "text/plain; charset=utf-8",
            body.into().into_bytes(),
        )
    }

    /// 303 See Other to `location` (after a POST, so a reload does not repeat it).
    pub(crate) fn redirect(location: impl Into<String>) -> UiResponse {
        UiResponse {
            location: Some(location.into()),
            ..UiResponse::with(303, "text/plain; charset=utf-8", Vec::new())
        }
    }

    /// `status`, `content_type`, `body`.
    pub(crate) fn with(status: u16, content_type: &'static str, body: Vec<u8>) -> UiResponse {
        UiResponse {
            status,
            content_type,
            body,
            location: None,
        }
    }

    /// The body as text (tests).
    #[cfg(test)]
    pub(crate) fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_splits_into_path_and_decoded_parameters() {
        let r = UiRequest::new(Method::Get, "/app/?appId=app-1%2F2&x=a+b&flag");
        assert_eq!(r.path, "/app");
        assert_eq!(r.param("appId"), Some("app-1/2"));
        assert_eq!(r.param("x"), Some("a b"));
        assert_eq!(r.param("flag"), Some(""));
        assert_eq!(r.param("missing"), None);
        assert_eq!(UiRequest::new(Method::Get, "/").path, "/");
    }

    #[test]
    fn malformed_escapes_stay_as_they_are() {
        assert_eq!(parse_params("a=%zz%4"), vec![("a".into(), "%zz%4".into())]);
        assert_eq!(parse_params("a=%"), vec![("a".into(), "%".into())]);
        assert_eq!(parse_params("a=%C3%A9"), vec![("a".into(), "é".into())]);
        assert_eq!(parse_params("a=%FF"), vec![("a".into(), "\u{fffd}".into())]);
    }
}
