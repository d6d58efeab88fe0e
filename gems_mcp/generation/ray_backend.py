"""Models as Ray Serve deployments: the generator (and a judge) on a cluster, one replica per GPU.

The MCP server, memory and skills stay next to the agent; only the model calls travel. A replica
builds its model from a factory the composition root passes (``backends``), so this module knows no
concrete backend. ``generate`` streams: each denoising step comes back as an event, then the images;
the caller's stop request cancels the stream, and the replica stops at its next step as it does in
process. Errors come back as the same ``GemsError`` class and sentence the model raised.

The protocols are synchronous and the server calls them in worker threads; every Serve response is
awaited on the server's event loop from there (``anyio.from_thread``), so no call blocks the loop and
Ray's "sync methods" check never fires. Outside an event loop (a script, the CLI) a call simply waits.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from anyio import from_thread
from PIL import Image

from gems_mcp import errors
from gems_mcp.errors import GemsError, GenerationCancelled, GenerationError, first_line
from gems_mcp.generation.base import Capabilities, GenerationRequest, StepCallback

log = logging.getLogger(__name__)

GENERATOR_APP = "gems-generator"
JUDGE_APP = "gems-judge"


def app_name(base: str, model: str) -> str:
    """The Serve application for one model: a running one is reused only when it serves the same model."""
    import hashlib

    return f"{base}-{hashlib.sha256(model.encode()).hexdigest()[:10]}"
Event = tuple[Any, ...]
"""("step", step, total) | ("images", [PIL images]) | ("error", GemsError class name, sentence)."""


class Replica:
    """The body of a deployment: one model built from ``factory``; device work (generate, verify) one at a time."""

    def __init__(self, factory: Callable[[], Any], warm: bool = True) -> None:
        self._model = factory()
        # Guards device work only: a prompt check or `covers` never waits behind a running generation.
        # A cancelled generation's thread holds it until its step ends.
        self._busy = threading.Lock()
        if warm and hasattr(self._model, "capabilities"):
            self._model.capabilities()  # load the weights now, not on the first request

    async def call(self, method: str, *args: Any) -> Event:
        """A plain method of the model (a prompt check, the defaults), in a thread beside any running work."""
        return await asyncio.to_thread(_answer, getattr(self._model, method), *args)

    async def work(self, method: str, *args: Any) -> Event:
        """Device work of the model (a judge's verify): one at a time on this replica."""

        def locked() -> Event:
            with self._busy:
                return _answer(getattr(self._model, method), *args)

        return await asyncio.to_thread(locked)

    async def has_judge(self) -> bool:
        return await asyncio.to_thread(lambda: self._model.judge() is not None)

    async def call_judge(self, method: str, *args: Any) -> Event:
        """A method of the judge that comes with the generator (the shapes world's exact judge)."""
        judge = self._model.judge()
        if judge is None:
            return ("value", None)
        return await asyncio.to_thread(_answer, getattr(judge, method), *args)

    async def generate(self, request: GenerationRequest) -> Any:
        """Stream the steps of one generation, then its images (or its error)."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event] = asyncio.Queue()
        stop = threading.Event()

        def on_step(step: int, total: int) -> None:
            loop.call_soon_threadsafe(events.put_nowait, ("step", step, total))

        def run() -> Event:
            with self._busy:
                if stop.is_set():
                    return ("error", "GenerationCancelled", "generation was cancelled")
                try:
                    return ("images", self._model.generate(request, on_step, stop.is_set))
                except GemsError as exc:
                    return ("error", type(exc).__name__, str(exc))
                except Exception as exc:
                    log.exception("generation failed in the replica")
                    return ("error", "GenerationError", f"the generator replica failed: {type(exc).__name__}: {exc}")

        done = loop.run_in_executor(None, run)
        try:
            while not done.done() or not events.empty():
                step = asyncio.ensure_future(events.get())
                await asyncio.wait({step, done}, return_when=asyncio.FIRST_COMPLETED)
                if step.done():
                    yield step.result()
                else:
                    step.cancel()
            yield await done
        finally:
            stop.set()  # the caller cancelled (or the stream ended): the model stops at its next step


def _answer(method: Callable[..., Any], *args: Any) -> Event:
    """A method's value as an event; a GemsError comes back as one, to be raised again as itself."""
    try:
        return ("value", method(*args))
    except GemsError as exc:
        return ("error", type(exc).__name__, str(exc))


def connect(address: str | None) -> None:
    """Join the cluster at ``address`` (a local one when None) and start Serve without an HTTP proxy."""
    try:
        import ray
        from ray import serve
    except ImportError as exc:
        raise GenerationError("GEMS_BACKEND=ray needs Ray Serve: pip install 'gems-mcp[ray]'") from exc
    if not ray.is_initialized():
        # Replica output must not reach this process's stdout: over stdio it belongs to MCP.
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    _cluster_errors_to_stderr()
    serve.start(proxy_location="Disabled")


def _cluster_errors_to_stderr() -> None:
    """Ray prints the cluster's error messages ("(raylet) ... actor died") to stdout, even with
    log_to_driver off; over stdio that would corrupt the protocol, so they go to stderr instead."""
    from ray._private import worker

    printer = getattr(worker, "print_to_stdstream", None)
    if printer is None or getattr(printer, "_gems_stderr", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        printer({**data, "is_err": True}, ignore_prefix)

    to_stderr._gems_stderr = True  # type: ignore[attr-defined]
    worker.print_to_stdstream = to_stderr


def replicas_wanted(requested: int, gpu: float = 1.0) -> tuple[int, dict[str, float]]:
    """How many replicas (the setting, else one per GPU in the cluster, else 1) and what each reserves:
    ``gpu`` of a GPU (half when a model judge shares each GPU with the generator), or one CPU."""
    import ray

    gpus = int(ray.cluster_resources().get("GPU", 0))
    count = requested or gpus or 1
    return count, ({"num_gpus": gpu} if gpus else {"num_cpus": 1})


def deploy(app: str, factory: Callable[[], Any], replicas: int, address: str | None,
           gpu: float = 1.0) -> tuple[Any, int]:
    """The handle of ``app``, deployed with ``replicas`` replicas of ``factory``'s model when not running yet."""
    from ray import serve

    connect(address)
    count, resources = replicas_wanted(replicas, gpu)
    running = serve.status().applications.get(app)
    if running is not None and running.status == "RUNNING":  # deployed already (by another server): reuse it
        count = sum(d.replica_states.get("RUNNING", 0) for d in running.deployments.values()) or count
        return serve.get_app_handle(app), count
    deployment = serve.deployment(Replica).options(
        name=app, num_replicas=count, ray_actor_options=resources, max_ongoing_requests=4,
    )
    log.info("deploying %s on Ray Serve: %d replica(s), each with %s", app, count, resources)
    return serve.run(deployment.bind(factory), name=app, route_prefix=None, blocking=False), count


class RayGenerator:
    """The Generator protocol over a Ray Serve deployment; one queue slot per replica."""

    def __init__(self, factory: Callable[[], Any], name: str, address: str | None = None, replicas: int = 0,
                 app: str = GENERATOR_APP, gpu: float = 1.0) -> None:
        self.name = name
        self._factory, self._address, self._replicas, self._app = factory, address, replicas, app_name(app, name)
        self._gpu = gpu
        self._handle: Any = None
        self._count = 1
        self._capabilities: Capabilities | None = None
        self._lock = threading.Lock()

    def handle(self) -> Any:
        with self._lock:
            if self._handle is None:
                try:
                    self._handle, self._count = deploy(
                        self._app, self._factory, self._replicas, self._address, self._gpu
                    )
                except GemsError:
                    raise
                except Exception as exc:  # no cluster at the address, Serve failed to start
                    where = self._address or "a local cluster"
                    raise GenerationError(f"Ray Serve could not be started on {where}: {first_line(exc)}") from exc
            return self._handle

    @property
    def devices(self) -> list[str]:
        """One queue slot per replica, so candidates and concurrent calls spread over them (deploys on first use)."""
        self.handle()
        return [f"ray:{i}" for i in range(self._count)]

    def _call(self, method: str, *args: Any) -> Any:
        return _unwrap(self._remote(lambda h: _result(h.call.remote(method, *args))))

    def _remote(self, send: Callable[[Any], Any]) -> Any:
        try:
            return send(self.handle())
        except GemsError:
            raise
        except _ray_errors() as exc:
            raise _replica_failed(exc) from exc

    def capabilities(self) -> Capabilities:
        if self._capabilities is None:
            self._capabilities = self._call("capabilities")
        return self._capabilities

    def validate_prompt(self, prompt: str) -> None:
        self._call("validate_prompt", prompt)

    def checklist(self, prompt: str) -> Any:
        return self._call("checklist", prompt)

    def judge(self) -> Any:
        has = self._remote(lambda h: _result(h.has_judge.remote()))
        return RemoteJudge(self, judge_of_generator=True, name=f"{self.name} judge") if has else None

    def generate(
        self,
        request: GenerationRequest,
        on_step: StepCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Image.Image]:
        """One request to one replica: steps forwarded as they arrive, a stop cancels the stream."""
        stream = self._remote(lambda h: h.options(stream=True).generate.remote(request))
        for event in self._events(stream):
            if event[0] == "step" and on_step is not None:
                on_step(event[1], event[2])
            if should_stop is not None and should_stop():
                stream.cancel()
                raise GenerationCancelled("generation was cancelled")
            if event[0] != "step":
                images: list[Image.Image] = _unwrap(("value", event[1]) if event[0] == "images" else event)
                return images
        raise GenerationError("the generator replica ended the stream without images")

    def _events(self, stream: Any) -> Iterator[Event]:
        while True:
            try:
                event = _result(stream, next_of_stream=True)
            except GemsError:
                raise
            except _ray_errors() as exc:
                raise _replica_failed(exc) from exc
            if event is _END:
                return
            yield event


class RemoteJudge:
    """The Judge protocol over a deployment: a judge app of its own, or the generator's own judge."""

    def __init__(self, source: Any, judge_of_generator: bool = False, name: str = "remote judge") -> None:
        self._source = source
        self._of_generator = judge_of_generator
        self.name = name

    def _call(self, method: str, *args: Any, device_work: bool = False) -> Any:
        if self._of_generator:
            generator: RayGenerator = self._source
            return _unwrap(generator._remote(lambda h: _result(h.call_judge.remote(method, *args))))
        entry = self._source.work if device_work else self._source.call
        try:
            return _unwrap(_result(entry.remote(method, *args)))
        except GemsError:
            raise
        except _ray_errors() as exc:
            raise _replica_failed(exc, "judge") from exc

    def covers(self, requirement: Any) -> bool:
        return bool(self._call("covers", requirement))

    def verify(self, images: list[Image.Image], checklist: list[Any]) -> list[Any]:
        return list(self._call("verify", images, checklist, device_work=True))


def deploy_judge(factory: Callable[[], Any], name: str, address: str | None, replicas: int = 0,
                 gpu: float = 0.5) -> RemoteJudge:
    """A judge built by ``factory`` on the cluster (one replica per GPU), used through the Judge protocol."""
    handle, _ = deploy(app_name(JUDGE_APP, name), factory, replicas, address, gpu)
    return RemoteJudge(handle, name=name)


_END = object()
"""What `_result` gives for a stream with no more events."""


def _result(response: Any, next_of_stream: bool = False) -> Any:
    """A Serve response's value (or a stream's next event): awaited on the event loop when called from one of its
    worker threads, waited for here when no event loop runs; never called on an event loop's own thread."""

    async def settle() -> Any:
        try:
            return await anext(response, _END) if next_of_stream else await response
        except Exception as exc:  # noqa: BLE001 - carried back to the calling thread and raised there as it was
            return _Raised(exc)

    try:
        outcome = from_thread.run(settle)
    except RuntimeError:  # no AnyIO event loop behind this thread: a script or the CLI, so wait here
        if _on_event_loop():
            raise RuntimeError("a Ray Serve call would block the event loop: call the backend in a worker thread") from None
        outcome = next(response, _END) if next_of_stream else response.result()
    if isinstance(outcome, _Raised):
        raise outcome.error
    return outcome


class _Raised:
    """An exception carried out of the event loop so `from_thread.run` cannot mistake it for its own."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _ray_errors() -> tuple[type[Exception], ...]:
    """What Ray raises when a replica died, was unreachable or failed to answer (imported only when one did)."""
    from ray.exceptions import RayError
    from ray.serve.exceptions import RayServeException

    return (RayError, RayServeException)


def _unwrap(event: Event) -> Any:
    """The value of a replica's answer, or its error raised again as the same GemsError class."""
    if event[0] == "error":
        cls = getattr(errors, event[1], None)
        error: GemsError = GenerationError(event[2])
        if isinstance(cls, type) and issubclass(cls, GemsError):
            try:
                error = cls(event[2]) if str(cls(event[2])) == event[2] else error
            except TypeError:  # a class built from other arguments (an id): its sentence is kept all the same
                pass
        raise error
    return event[1]


def _replica_failed(exc: Exception, what: str = "generator") -> GemsError:
    """A replica that died or could not be reached: one sentence, of the error class the caller handles."""
    cls = getattr(errors, "JudgeError", GenerationError) if what == "judge" else GenerationError
    return cls(
        f"the Ray replica running the {what} failed ({type(exc).__name__}: {first_line(exc)}); "
        "Serve restarts it, so the next call can run"
    )

