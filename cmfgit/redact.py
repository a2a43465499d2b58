"""Keep secrets out of records (and so out of git, forever).

Applied to params, the command line, recorded environment variables and the
git remote URL. A value is replaced by ``REDACTED`` when:
- its key looks like a secret (password, token, secret, api key, ...);
- it is the value of a secret-looking environment variable of this process;
- it looks like a well-known credential (GitHub, AWS, Slack, OpenAI tokens).
URLs keep everything but their password: ``https://user:REDACTED@host``.
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
_SECRET_WORDS = {"password", "passwd", "secret", "token", "credential", "credentials", "passphrase"}
_SECRET_PAIRS = {("api", "key"), ("access", "key"), ("private", "key"), ("auth", "key"), ("session", "key")}
_SECRET_JOINED = {"apikey", "accesskey", "privatekey", "authtoken", "secretkey", "accesstoken"}
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@:\s]*):(?P<pw>[^/@\s]+)@")
_TOKEN_PATTERNS = [
    r"gh[pousr]_[A-Za-z0-9]{20,}",  # GitHub
    r"github_pat_[A-Za-z0-9_]{20,}",
    r"glpat-[A-Za-z0-9_-]{20,}",  # GitLab
    r"xox[abprs]-[A-Za-z0-9-]{10,}",  # Slack
    r"sk-[A-Za-z0-9_-]{20,}",  # OpenAI and others
    r"hf_[A-Za-z0-9]{30,}",  # Hugging Face
    r"(?:AKIA|ASIA)[0-9A-Z]{16}",  # AWS access key id
]
_MIN_ENV_SECRET = 6  # shorter values are too likely to appear by chance
_MIN_TOKEN = 15  # no string shorter than this matches a _TOKEN_PATTERNS entry (xoxb- + 10)
_tokens: list[re.Pattern[str]] = []  # the token patterns as one regex, compiled on first use


def _token_pattern() -> re.Pattern[str]:
    if not _tokens:
        _tokens.append(re.compile("|".join(f"(?:{p})" for p in _TOKEN_PATTERNS)))
    return _tokens[0]


def is_secret_key(key: str, extra: Iterable[re.Pattern[str]] = ()) -> bool:
    words = [w.lower() for w in _WORD_SPLIT.split(key) if w]
    if any(w in _SECRET_WORDS or w in _SECRET_JOINED for w in words):
        return True
    if any(pair in _SECRET_PAIRS for pair in zip(words, words[1:])):
        return True
    return any(p.search(key) for p in extra)


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
            value = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", value)
        for secret in self.known_secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        if len(value) >= _MIN_TOKEN:
            value = _token_pattern().sub(REDACTED, value)
        for pattern in self.value_patterns:
            value = pattern.sub(REDACTED, value)
        return value

    def value(self, key: str, value: Any) -> Any:
        """Redact a keyed value: the whole value if the key is secret."""
        if self.secret_key(key):
            return REDACTED
        return self.deep(value)

    def deep(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep(v) for v in value]
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
        hide_next = False
        for arg in argv:
            if hide_next:
                out.append(REDACTED)
                hide_next = False
                continue
            if arg.startswith("-") and "=" not in arg:
                out.append(arg)
                hide_next = self.secret_key(arg.lstrip("-"))
                continue
            key, sep, val = arg.partition("=")
            if sep and self.secret_key(key.lstrip("-")):
                out.append(f"{key}={REDACTED}")
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
