"""Failures as an Airflow worker logs them: exception types, messages and traceback shape.

Real exceptions raised by task code keep their own frames; the frames of this runtime are
replaced by the Airflow operator frames a worker would show above them. Runtime faults that
never touch a real network (a connection reset, a hung request) get the frames the real
libraries would have produced, so the log reads the same as on a real worker.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import textwrap
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from traceback import FrameSummary

SITE = "/home/airflow/.local/lib/python3.11/site-packages"
STDLIB = "/usr/local/lib/python3.11"
_RUNTIME_DIR = Path(__file__).resolve().parent
_RUNTIME_FILES = {
    str(_RUNTIME_DIR / f"{name}.py")
    for name in ("runner", "operators", "dbt_task", "tasklog", "airflow_errors")
}


def _frame(path: str, lineno: int, name: str, line: str) -> FrameSummary:
    return FrameSummary(path, lineno, name, lookup_line=False, line=line)


# ---------------------------------------------------------------- exception types
# Named after the modules that raise them, so tracebacks print e.g.
# `airflow.exceptions.AirflowTaskTimeout: Timeout, PID: 4821`.


class AirflowException(Exception):
    __module__ = "airflow.exceptions"


class AirflowTaskTimeout(AirflowException):
    __module__ = "airflow.exceptions"


class ProtocolError(Exception):
    __module__ = "urllib3.exceptions"


class MaxRetryError(Exception):
    __module__ = "urllib3.exceptions"


class RequestsConnectionError(Exception):
    __module__ = "requests.exceptions"
    __qualname__ = "ConnectionError"


def synthetic(exc: BaseException, frames: Sequence[FrameSummary]) -> BaseException:
    """Attach the frames a real library would have shown for `exc`."""
    exc.airflow_frames = list(frames)  # type: ignore[attr-defined]
    return exc


# ---------------------------------------------------------------- Airflow's own frames

PYTHON_OPERATOR = [
    _frame(
        f"{SITE}/airflow/operators/python.py",
        192,
        "execute",
        "return_value = self.execute_callable()",
    ),
    _frame(
        f"{SITE}/airflow/operators/python.py",
        209,
        "execute_callable",
        "return self.python_callable(*self.op_args, **self.op_kwargs)",
    ),
]
BASH_OPERATOR = [
    _frame(f"{SITE}/airflow/operators/bash.py", 210, "execute", "raise AirflowException(")
]
_TIMEOUT = _frame(
    f"{SITE}/airflow/utils/timeout.py",
    69,
    "handle_timeout",
    "raise AirflowTaskTimeout(self.error_message)",
)


def bash_failure(exit_code: int) -> AirflowException:
    """What BashOperator raises when its command exits non-zero."""
    message = f"Bash command failed. The command returned a non-zero exit code {exit_code}."
    return synthetic(AirflowException(message), [])  # type: ignore[return-value]


# ---------------------------------------------------------------- an HTTP fetch that fails

_SESSION_GET = [
    _frame(f"{SITE}/requests/sessions.py", 602, "get", 'return self.request("GET", url, **kwargs)'),
    _frame(f"{SITE}/requests/sessions.py", 589, "request", "resp = self.send(prep, **send_kwargs)"),
    _frame(f"{SITE}/requests/sessions.py", 703, "send", "r = adapter.send(request, **kwargs)"),
]
_URLOPEN = [
    _frame(f"{SITE}/requests/adapters.py", 486, "send", "resp = conn.urlopen("),
]
_READ_RESPONSE = [
    _frame(f"{SITE}/urllib3/connectionpool.py", 793, "urlopen", "response = self._make_request("),
    _frame(
        f"{SITE}/urllib3/connectionpool.py", 537, "_make_request", "response = conn.getresponse()"
    ),
    _frame(
        f"{SITE}/urllib3/connection.py",
        466,
        "getresponse",
        "httplib_response = super().getresponse()",
    ),
    _frame(f"{STDLIB}/http/client.py", 1378, "getresponse", "response.begin()"),
    _frame(
        f"{STDLIB}/http/client.py", 318, "begin", "version, status, reason = self._read_status()"
    ),
    _frame(
        f"{STDLIB}/http/client.py",
        279,
        "_read_status",
        'line = str(self.fp.readline(_MAXLINE + 1), "iso-8859-1")',
    ),
    _frame(f"{STDLIB}/socket.py", 706, "readinto", "return self._sock.recv_into(b)"),
    _frame(f"{STDLIB}/ssl.py", 1278, "recv_into", "return self.read(nbytes, buffer)"),
    _frame(f"{STDLIB}/ssl.py", 1134, "read", "return self._sslobj.read(len, buffer)"),
]


RESET_REASON = (
    "ProtocolError('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))"
)


def connection_reset(host: str, path: str, caller: FrameSummary) -> BaseException:
    """requests' error after urllib3 used up its retries on a peer that resets the connection."""
    reset = synthetic(ConnectionResetError(104, "Connection reset by peer"), _READ_RESPONSE)
    protocol = ProtocolError(
        "Connection aborted.", ConnectionResetError(104, "Connection reset by peer")
    )
    synthetic(
        protocol,
        [
            _frame(
                f"{SITE}/urllib3/connectionpool.py", 847, "urlopen", "retries = retries.increment("
            ),
            _frame(
                f"{SITE}/urllib3/util/retry.py",
                470,
                "increment",
                "raise reraise(type(error), error, _stacktrace)",
            ),
            _frame(f"{SITE}/urllib3/util/util.py", 38, "reraise", "raise value.with_traceback(tb)"),
            *_READ_RESPONSE,
        ],
    )
    protocol.__context__ = reset
    reason = RESET_REASON
    pool = f"HTTPSConnectionPool(host='{host}', port=443)"
    max_retry = MaxRetryError(f"{pool}: Max retries exceeded with url: {path} (Caused by {reason})")
    synthetic(
        max_retry,
        [
            *_URLOPEN,
            _frame(f"{SITE}/urllib3/connectionpool.py", 877, "urlopen", "return self.urlopen("),
            _frame(
                f"{SITE}/urllib3/connectionpool.py", 847, "urlopen", "retries = retries.increment("
            ),
            _frame(
                f"{SITE}/urllib3/util/retry.py",
                515,
                "increment",
                "raise MaxRetryError(_pool, url, reason) from reason  # type: ignore[arg-type]",
            ),
        ],
    )
    max_retry.__cause__ = protocol
    error = RequestsConnectionError(str(max_retry))
    synthetic(
        error,
        [
            caller,
            *_SESSION_GET,
            _frame(
                f"{SITE}/requests/adapters.py",
                519,
                "send",
                "raise ConnectionError(e, request=request)",
            ),
        ],
    )
    error.__context__ = max_retry
    return error


_PATHLIB = f"{STDLIB}/pathlib.py"


def stalled_listing(pid: int, caller: FrameSummary, depth: int = 3) -> AirflowTaskTimeout:
    """Airflow's timeout firing while a glob lists a landing folder whose mount stopped answering.

    `depth` is how many literal parts the glob pattern has before its wildcard.
    """
    error = AirflowTaskTimeout(f"Timeout, PID: {pid}")
    precise = _frame(
        _PATHLIB,
        341,
        "_select_from",
        "for p in self.successor._select_from(path, is_dir, exists, scandir):",
    )
    synthetic(
        error,
        [
            caller,
            _frame(_PATHLIB, 953, "glob", "for p in selector.select_from(self):"),
            *[precise] * depth,
            _frame(_PATHLIB, 356, "_select_from", "entries = list(scandir_it)"),
            _TIMEOUT,
        ],
    )
    return error


_IO_WORDS = ("glob(", "open(", "read", "connect(", "fetch", "get(", "execute(")


def caller_frame(fn: Callable[..., object]) -> FrameSummary:
    """The frame of a task's callable at its first simple statement that does I/O."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return _frame("<unknown>", 0, getattr(fn, "__name__", "callable"), "")
    try:
        lines, start = inspect.getsourcelines(fn)
        tree = ast.parse(textwrap.dedent("".join(lines))).body[0]
    except (OSError, SyntaxError, IndexError):
        return _frame(code.co_filename, code.co_firstlineno, fn.__name__, "")
    compound = (ast.With, ast.For, ast.If, ast.Try, ast.While, ast.FunctionDef)
    simple = sorted(
        (
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.stmt)
            and not isinstance(n, compound)
            and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
        ),  # docstrings
        key=lambda n: n.lineno,
    )
    candidates = [(w, n) for w in _IO_WORDS for n in simple if w in ast.unparse(n)]
    chosen = candidates[0][1] if candidates else (simple or [tree])[0]
    lineno = start + chosen.lineno - 1
    text = linecache.getline(code.co_filename, lineno).strip()
    return _frame(code.co_filename, lineno, fn.__name__, text)


# ---------------------------------------------------------------- rendering

_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def render_traceback(
    exc: BaseException,
    operator_frames: Sequence[FrameSummary],
    python_callable: Callable[..., object] | None = None,
) -> str:
    """The traceback text Airflow writes under `Task failed with exception`."""
    chain = _chain(exc)
    parts: list[str] = []
    for i, (link, error) in enumerate(chain):
        if i:
            parts.append(link)
        outer = error is exc
        frames = _frames_of(error, python_callable if outer else None, trim=outer)
        if outer:
            frames = [*operator_frames, *frames]
        if frames:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.StackSummary.from_list(frames).format())
        parts.extend(traceback.format_exception_only(type(error), error))
    return "".join(parts).rstrip("\n")


def _chain(exc: BaseException) -> list[tuple[str, BaseException]]:
    """Root cause first, each with the sentence Python prints before the next exception."""
    chain: list[tuple[str, BaseException]] = []
    seen: set[int] = set()
    link = ""
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((link, current))
        if current.__cause__ is not None:
            link, current = _CAUSE, current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            link, current = _CONTEXT, current.__context__
        else:
            current = None
    # each link belongs before the exception that was raised later
    links = [link for link, _ in chain][1:] + [""]
    return [(links[i], e) for i, (_, e) in enumerate(chain)][::-1]


def _frames_of(
    exc: BaseException, python_callable: Callable[..., object] | None, *, trim: bool
) -> list[FrameSummary]:
    given = getattr(exc, "airflow_frames", None)
    if given is not None:
        return list(given)
    frames = list(traceback.extract_tb(exc.__traceback__))
    if not trim:
        return frames
    if python_callable is not None and hasattr(python_callable, "__code__"):
        code = python_callable.__code__
        for i, frame in enumerate(frames):
            if frame.filename == code.co_filename and frame.name == code.co_name:
                return frames[i:]
    while frames and frames[0].filename in _RUNTIME_FILES:
        frames.pop(0)  # the runtime plays Airflow; its own frames would not be on a worker
    return frames
