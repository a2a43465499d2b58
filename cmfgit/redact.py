"""Keep secrets out of records (and so out of git, forever).

Applied to params, the command line, recorded environment variables, the
git remote URL, and every URL cmfgit prints. A value is replaced by ``REDACTED`` when:
- its key looks like a secret (:func:`is_secret_key`: password, token, secret,
  api key, ...; ``auth``, ``pass``, ``psw``, ``pw`` only as a key's last word);
- it follows such a key: ``key=X``, ``key: X``, ``--key X``, ``-key X`` in argv
  and inside any string (a ``sh -c`` script, a libpq ``"user=x password=X"``,
  ``Authorization: Bearer X``); a bare ``password X`` too;
- it is the password of ``-u``/``--user``/``--proxy-user user:X`` (curl);
- it is the value of a secret-looking environment variable of this process;
- it looks like a well-known credential (GitHub, AWS, Slack, OpenAI tokens).
URLs keep everything but their credentials: ``https://user:REDACTED@host``,
and a token given as the user name (``https://ghp_…@host``) is hidden whole.
One-letter options other than ``-u`` are never judged (``-p`` is a port, a
param or a password depending on the program).
``.cmf/config.yaml`` adds patterns under ``redact.keys`` and ``redact.values``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

TYPE_CHECKING = False  # typing's constant without importing typing (~4 ms of log-run start-up)
if TYPE_CHECKING:
    from typing import Any

REDACTED = "REDACTED"

# Matched against the words of a key: AWS_SECRET_ACCESS_KEY -> aws secret access key.
_SECRET_WORDS = {
    "password",
    "passwd",
    "secret",
    "token",
    "credential",
    "credentials",
    "passphrase",
    "authorization",
}
# Secret only as the last word of a key: basic_auth, --auth, db_pw, -psw;
# not auth_url, auth_type or pass_count.
_SECRET_TAILS = {"auth", "pass", "psw", "pw"}
# Secret as the last of several words only: MYSQL_PWD (not PWD, the working directory).
_SECRET_QUALIFIED_TAILS = {"pwd"}
# A word ending so is secret: dbpassword, clientsecret, bearertoken (not tokenizer).
_SECRET_SUFFIXES = ("password", "passwd", "passphrase", "secret", "token")
_SECRET_PAIRS = {("api", "key"), ("access", "key"), ("private", "key"), ("auth", "key"), ("session", "key")}
_SECRET_JOINED = {"apikey", "accesskey", "privatekey", "authtoken", "secretkey", "accesstoken"}
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
# Bare words (no dashes, no '=') that hide the next word: ``mysqladmin password X``.
_PASSWORD_WORDS = {"password", "passphrase"}
# curl-style options whose value is ``user:password``.
_USER_OPTIONS = {"-u", "--user", "--proxy-user"}
# ``Authorization: Bearer X``: the scheme stays, the credential goes.
_AUTH_SCHEMES = {"bearer", "basic", "token", "digest", "negotiate"}

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@:\s]*):(?P<pw>[^/@\s]+)@")
# A URL whose user name is token-shaped (20+ of [A-Za-z0-9_-], digits among
# them): ``https://<token>@github.com`` is how GitHub and Azure take a token.
_URL_TOKEN_USER = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[A-Za-z0-9_-]{20,})@")
# A key and its separator in free text: ``password=``, ``"password": ``,
# ``--password ``, ``password ``. Where the value ends is decided by _value_end.
_PAIR = re.compile(
    r"(?<![A-Za-z0-9_.-])(?P<dash>--?)?(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)[\"']?(?P<sep>[ \t]*=[ \t]*|:[ \t]+|[ \t]+)"
)
_VALUE = re.compile(r"[^\s;&|,)}\]'\"]*")
# Every key _pairs can act on holds one of these (tests/test_redact.py checks it
# against the word lists): text without any is skipped unless redact.keys is set.
_HINTS = ("pass", "secret", "token", "auth", "cred", "key", "psw", "pw", "-u")
_TOKEN_PATTERNS = [
    r"gh[pousr]_[A-Za-z0-9]{20,}",  # GitHub
    r"github_pat_[A-Za-z0-9_]{20,}",
    r"glpat-[A-Za-z0-9_-]{20,}",  # GitLab
    r"xox[abprs]-[A-Za-z0-9-]{10,}",  # Slack
    r"sk-[A-Za-z0-9_-]{20,}",  # OpenAI and others
    r"hf_[A-Za-z0-9]{30,}",  # Hugging Face
    r"(?:AKIA|ASIA)[0-9A-Z]{16}",  # AWS access key id
]
_MAX_DEPTH = 200  # canonical._RECORD_MAX_DEPTH: deep() stops a value that contains itself
_MIN_ENV_SECRET = 6  # shorter values are too likely to appear by chance
_MIN_TOKEN = 15  # no string shorter than this matches a _TOKEN_PATTERNS entry (xoxb- + 10)
_tokens: list[re.Pattern[str]] = []  # the token patterns as one regex, compiled on first use


def _token_pattern() -> re.Pattern[str]:
    if not _tokens:
        _tokens.append(re.compile("|".join(f"(?:{p})" for p in _TOKEN_PATTERNS)))
    return _tokens[0]


def is_secret_key(key: str, extra: Iterable[re.Pattern[str]] = ()) -> bool:
    """True if ``key`` names a secret: a secret word anywhere in it (``DB_PASSWORD``,
    ``apiKey``), a word ending in one (``dbpassword``), or ``auth``/``pass``/``psw``/``pw``
    as its last word (``basic_auth``), or ``pwd`` after another word (``MYSQL_PWD``);
    plus the ``extra`` patterns."""
    words = [w.lower() for w in _WORD_SPLIT.split(key) if w]
    if not words:
        return any(p.search(key) for p in extra)
    if any(w in _SECRET_WORDS or w in _SECRET_JOINED or w.endswith(_SECRET_SUFFIXES) for w in words):
        return True
    if words[-1] in _SECRET_TAILS or (len(words) > 1 and words[-1] in _SECRET_QUALIFIED_TAILS):
        return True
    if any(pair in _SECRET_PAIRS for pair in zip(words, words[1:])):
        return True
    return any(p.search(key) for p in extra)


def _hide_url_user(m: re.Match[str]) -> str:
    user = m["user"]
    if any(c.isdigit() for c in user) and any(c.isalpha() for c in user):
        return f"{m['scheme']}{REDACTED}@"
    return m[0]


def _urls(value: str) -> str:
    value = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", value)
    return _URL_TOKEN_USER.sub(_hide_url_user, value)


def url_text(value: str) -> str:
    """``value`` with the credentials of its URLs and well-known tokens hidden:
    for messages cmfgit prints (a remote URL, git's stderr). No configuration needed."""
    if "://" in value:
        value = _urls(value)
    if len(value) >= _MIN_TOKEN:
        value = _token_pattern().sub(REDACTED, value)
    return value


def _user_password(value: str) -> str:
    """``user:password`` (curl's ``-u``) with the password hidden; ``1000:1000``
    (docker's uid:gid) and values without a colon are kept."""
    user, sep, password = value.partition(":")
    if not sep or not password or password.isdigit():
        return value
    return f"{user}:{REDACTED}"


def _value_end(text: str, start: int) -> int:
    """Where the value that begins at ``start`` ends: a quoted value at its
    closing quote (exclusive), else at whitespace or shell punctuation."""
    if start < len(text) and text[start] in "'\"":
        close = text.find(text[start], start + 1)
        return len(text) if close < 0 else close
    m = _VALUE.match(text, start)
    return m.end() if m else start


class Redactor:
    def __init__(self, extra_keys: Iterable[str] = (), extra_values: Iterable[str] = ()) -> None:
        self.extra_keys = [re.compile(p, re.IGNORECASE) for p in extra_keys]
        self.value_patterns = [re.compile(p) for p in extra_values]  # after the built-in _TOKEN_PATTERNS
        self._secret_keys: dict[str, bool] = {}  # a sweep logs the same keys run after run
        self._argvs: dict[tuple[str, ...], list[str]] = {}
        # Values of this process's secret-looking variables, longest first so
        # that one secret containing another is replaced whole.
        secrets = {v for k, v in os.environ.items() if len(v) >= _MIN_ENV_SECRET and self.secret_key(k)}
        self.known_secrets = sorted(secrets, key=len, reverse=True)

    def secret_key(self, key: str) -> bool:
        known = self._secret_keys.get(key)
        if known is None:
            known = is_secret_key(key, self.extra_keys)
            if len(self._secret_keys) < 10_000:
                self._secret_keys[key] = known
        return known

    def text(self, value: str) -> str:
        """Redact credentials inside a free-form string."""
        if "://" in value:
            value = _urls(value)
        for secret in self.known_secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        if len(value) >= _MIN_TOKEN:
            value = _token_pattern().sub(REDACTED, value)
        for pattern in self.value_patterns:
            value = pattern.sub(REDACTED, value)
        if "=" in value or " " in value or ":" in value or "\t" in value:
            value = self._pairs(value)
        return value

    def _pairs(self, text: str) -> str:
        """The values that follow secret keys inside ``text`` (see the module doc)."""
        if not self.extra_keys:
            low = text.lower()
            if not any(h in low for h in _HINTS):
                return text
        parts: list[str] = []
        done = pos = 0
        while True:
            m = _PAIR.search(text, pos)
            if m is None:
                break
            start = pos = m.end()
            dash, key, kv = m["dash"], m["key"], bool(m["sep"].strip())  # kv: '=' or ':'
            user = bool(dash) and not kv and f"{dash}{key}" in _USER_OPTIONS
            if not user and not (self.secret_key(key) if (kv or dash) else key.lower() in _PASSWORD_WORDS):
                continue
            end = _value_end(text, start)
            quoted = start < len(text) and text[start] in "'\""
            begin = start + 1 if quoted else start
            if user:
                shown = _user_password(text[begin:end])
                if shown == text[begin:end]:
                    continue
                replace = shown
            else:
                if not quoted and text[begin:end].lower() in _AUTH_SCHEMES:
                    after = end  # ``Bearer X``: the scheme stays, the next word goes
                    while after < len(text) and text[after] in " \t":
                        after += 1
                    begin, end = after, _value_end(text, after)
                if end <= begin:
                    continue
                replace = REDACTED
            parts.append(text[done:begin])
            parts.append(replace)
            done = pos = end
        if not parts:
            return text
        parts.append(text[done:])
        return "".join(parts)

    def value(self, key: str, value: Any) -> Any:
        """Redact a keyed value: the whole value if the key is secret."""
        if self.secret_key(key):
            return REDACTED
        return self.deep(value)

    def deep(self, value: Any, depth: int = 1) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (dict, list)) and depth > _MAX_DEPTH:
            from cmfgit.errors import UsageError

            raise UsageError(f"a value is nested more than {_MAX_DEPTH} levels deep (or contains itself)")
        if isinstance(value, dict):
            return {k: REDACTED if self.secret_key(k) else self.deep(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep(v, depth + 1) for v in value]
        return value

    def mapping(self, values: dict[str, Any]) -> dict[str, Any]:
        """``{k: self.value(k, v)}``, with the common cases inlined (an API run's params)."""
        known = self._secret_keys
        out: dict[str, Any] = {}
        for k, v in values.items():
            secret = known.get(k)
            if secret is None:
                secret = self.secret_key(k)
            t = type(v)
            if secret:
                out[k] = REDACTED
            elif t is str:
                out[k] = self.text(v)
            elif t is int or t is float or t is bool or v is None:
                out[k] = v
            else:
                out[k] = self.deep(v)
        return out

    def argv(self, argv: list[str]) -> list[str]:
        """Redact a command line: ``--token X``, ``--token=X``, ``token=X``."""
        key = tuple(argv)
        done = self._argvs.get(key)  # the API records sys.argv run after run
        if done is None:
            done = self._argv(argv)
            if len(self._argvs) >= 64:
                self._argvs.clear()
            self._argvs[key] = done
        return list(done)

    def _argv(self, argv: list[str]) -> list[str]:
        out: list[str] = []
        hide_next = user_next = False
        for arg in argv:
            if hide_next:
                out.append(REDACTED)
                hide_next = False
                continue
            if user_next:  # -u user:password
                user_next = False
                shown = _user_password(arg)
                out.append(shown if shown != arg else self.text(arg))
                continue
            if arg.startswith("-") and "=" not in arg:
                out.append(arg)
                if arg in _USER_OPTIONS:
                    user_next = True
                elif arg.startswith("-u") and not arg.startswith("--") and ":" in arg:  # -uadmin:X
                    out[-1] = "-u" + _user_password(arg[2:])
                else:
                    hide_next = self.secret_key(arg.lstrip("-"))
                continue
            key, sep, val = arg.partition("=")
            if sep and " " not in key and "\t" not in key and self.secret_key(key.lstrip("-")):
                out.append(f"{key}={REDACTED}")  # all of it: --password='a b' is one value
                continue
            if sep and key in _USER_OPTIONS:
                out.append(f"{key}={_user_password(val)}")
                continue
            if arg.lower() in _PASSWORD_WORDS:
                out.append(arg)
                hide_next = True
                continue
            out.append(self.text(arg))
        return out


# -- files: what a working-tree snapshot must leave out (gitstate.py) ---------

# Names of files that hold credentials by convention, matched against the last
# path component, lower-cased (``fnmatch``-style globs).
SECRET_FILE_GLOBS = (
    ".env",
    ".env.*",
    "*.env",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    ".htpasswd",
    ".git-credentials",
    ".dockercfg",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.kdbx",
    "*.gpg",
    "*.asc",
    "*.ovpn",
    "*.tfvars",
    "*.tfstate",
    "kubeconfig",
)
# A path component also names a secret when its words, plurals made singular,
# form a secret key (is_secret_key): notes-credentials.txt, secrets/,
# api_keys.json, passwords.txt. Words, not substrings: tokenizer.py is code.
# Content: a private key block, or an assignment of a literal to a secret-looking
# key (``api_key: x``, ``PASSWORD=x``, ``"token": "x"``, ``export AWS_SECRET_ACCESS_KEY=x``).
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_ASSIGNMENT = re.compile(
    r"""(?:^|[\s{,;(])(?:export\s+)?["']?([A-Za-z_][A-Za-z0-9_.-]*)["']?\s*(?::|=|:=)\s*"""
    r"""(?:"([^"\n]+)"|'([^'\n]+)'|([^\s"'#,;(){}\[\]]+)[ \t]*(?:#.*)?$)""",
    re.MULTILINE,
)
# Unquoted values that are not secrets: empty-ish words and references to elsewhere.
_NOT_A_VALUE = {"null", "none", "nil", "~", "true", "false", "redacted", "changeme", "xxx", "***"}
# A value starting so is a reference or a placeholder: $VAR, ${VAR}, %(x)s, <pad>, [PAD], {{ x }}.
_REFERENCE = ("$", "%", "<", "[", "{")
# Source code: there, only a quoted literal counts as a secret value
# (``password = args.password`` is a reference, ``password = "x"`` is not).
_CODE_SUFFIXES = {
    "py", "pyi", "pyx", "ipynb", "r", "jl", "js", "mjs", "ts", "java", "scala", "kt", "go", "rs",
    "c", "h", "cc", "cpp", "hpp", "cs", "rb", "php", "swift", "m", "lua", "pl", "sql",
}  # fmt: skip
_file_globs: list[re.Pattern[str]] = []


def secret_path(rel: str, redactor: Redactor) -> bool:
    """The path (``/``-separated, relative) names a file that holds secrets."""
    if not _file_globs:
        import fnmatch

        _file_globs.append(re.compile("|".join(fnmatch.translate(g) for g in SECRET_FILE_GLOBS)))
    parts = rel.split("/")
    if _file_globs[0].match(parts[-1].lower()):
        return True
    for part in parts:
        words = [w.lower() for w in _WORD_SPLIT.split(part) if w]
        singular = "_".join(w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words)
        if redactor.secret_key(part) or redactor.secret_key(singular):
            return True
    return False


def secret_content(data: bytes, redactor: Redactor, name: str = "") -> bool:
    """The bytes hold something the redaction rules would replace: a token,
    a credential in a URL, a secret of this process's environment, a private
    key, a ``redact.values`` match, or a literal value given to a secret key
    (``name``, the file's name, tells source code, where only a quoted
    literal counts, from configuration files, where a bare value does too).

    Only the lines holding a hint (``://``, a token's prefix, a secret word)
    go through the regular expressions, so a data file is scanned at about
    the speed of ``str.find``."""
    text = data.decode("latin-1")  # every byte is a character: binary files are scanned too
    code = name.rsplit(".", 1)[-1].lower() in _CODE_SUFFIXES if "." in name else False
    if "PRIVATE KEY" in text and _PRIVATE_KEY.search(text):
        return True
    if any(secret in text for secret in redactor.known_secrets):
        return True
    if any(pattern.search(text) for pattern in redactor.value_patterns):
        return True
    if redactor.extra_keys and any(_secret_assignment(m, redactor, code) for m in _ASSIGNMENT.finditer(text)):
        return True  # redact.keys may name keys without a hint word: the whole text is scanned
    lowered = text.lower()
    for hint in _CONTENT_HINTS:
        start = 0
        while (pos := lowered.find(hint, start)) >= 0:
            begin = text.rfind("\n", 0, pos) + 1
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            if _secret_line(text[begin:end], redactor, code):
                return True
            start = end + 1
    return False


# Literals (lower-cased) without which no line can hold what _secret_line looks for:
# a URL, a _TOKEN_PATTERNS prefix, or a word of a secret key (is_secret_key).
_CONTENT_HINTS = (
    "://", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xox", "sk-", "hf_", "akia", "asia",
    "pass", "secret", "token", "credential", "key",
)  # fmt: skip


def _secret_line(line: str, redactor: Redactor, code: bool) -> bool:
    if "://" in line and _URL_CREDENTIALS.search(line):
        return True
    if len(line) >= _MIN_TOKEN and _token_pattern().search(line):
        return True
    return any(_secret_assignment(m, redactor, code) for m in _ASSIGNMENT.finditer(line))


def _secret_assignment(match: re.Match[str], redactor: Redactor, code: bool) -> bool:
    """``key: value`` / ``key = value`` with a secret-looking key and a literal value."""
    if not redactor.secret_key(match.group(1)):
        return False
    quoted = match.group(2) or match.group(3)
    if quoted is not None:
        value = quoted.strip()
    elif code:
        return False
    else:
        value = match.group(4)
    return bool(value) and value.lower() not in _NOT_A_VALUE and not value.startswith(_REFERENCE)
