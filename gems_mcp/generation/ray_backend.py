"""Models as Ray Serve deployments: the generator (and a judge) on a cluster, one replica per GPU.

The MCP server, memory and skills stay next to the agent; only the model calls travel. A replica
builds its model from a factory the composition root passes (``backends``), so this module knows no
concrete backend. ``generate`` streams: each denoising step comes back as an event, then the images;
the caller's stop request cancels the stream, and the replica stops at its next step as it does in
process. Errors come back as the same ``GemsError`` class and sentence the model raised.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

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
    """The body of a deployment: one model built from ``factory``, one call at a time on it."""

    def __init__(self, factory: Callable[[], Any], warm: bool = True) -> None:
        self._model = factory()
        self._busy = threading.Lock()  # a cancelled call's thread holds it until its step ends
        if warm and hasattr(self._model, "capabilities"):
            self._model.capabilities()  # load the weights now, not on the first request

    def call(self, method: str, *args: Any) -> Event:
        """A plain method of the model; a GemsError comes back as an event, to be raised again as itself."""
        try:
            with self._busy:
                return ("value", getattr(self._model, method)(*args))
        except GemsError as exc:
            return ("error", type(exc).__name__, str(exc))

    def has_judge(self) -> bool:
        return self._model.judge() is not None

    def call_judge(self, method: str, *args: Any) -> Event:
        """A method of the judge that comes with the generator (the shapes world's exact judge)."""
        judge = self._model.judge()
        return ("value", None if judge is None else getattr(judge, method)(*args))

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
                except Exception as exc:  # a bug or a device fault in the replica: one sentence back, not a trace
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
        """One queue slot per replica, so candidates and concurrent calls spread over them."""
        _off_the_event_loop(self.handle)
        return [f"ray:{i}" for i in range(self._count)]

    def _call(self, method: str, *args: Any) -> Any:
        return _unwrap(self._remote(lambda h: h.call.remote(method, *args).result()))

    def _remote(self, send: Callable[[Any], Any]) -> Any:
        try:
            return _off_the_event_loop(lambda: send(self.handle()))
        except GemsError:
            raise
        except Exception as exc:
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
        has = self._remote(lambda h: h.has_judge.remote().result())
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
                return _unwrap(("value", event[1]) if event[0] == "images" else event)
        raise GenerationError("the generator replica ended the stream without images")

    def _events(self, stream: Any) -> Iterator[Event]:
        try:
            yield from stream
        except GemsError:
            raise
        except Exception as exc:
            raise _replica_failed(exc) from exc


class RemoteJudge:
    """The Judge protocol over a deployment: a judge app of its own, or the generator's own judge."""

    def __init__(self, source: Any, judge_of_generator: bool = False, name: str = "remote judge") -> None:
        self._source = source
        self._of_generator = judge_of_generator
        self.name = name

    def _call(self, method: str, *args: Any) -> Any:
        if self._of_generator:
            generator: RayGenerator = self._source
            return _unwrap(generator._remote(lambda h: h.call_judge.remote(method, *args).result()))
        try:
            return _unwrap(self._source.call.remote(method, *args).result())
        except GemsError:
            raise
        except Exception as exc:
            raise _replica_failed(exc, "judge") from exc

    def covers(self, requirement: Any) -> bool:
        return self._call("covers", requirement)

    def verify(self, images: list[Image.Image], checklist: list[Any]) -> list[Any]:
        return self._call("verify", images, checklist)


def deploy_judge(factory: Callable[[], Any], name: str, address: str | None, replicas: int = 0,
                 gpu: float = 0.5) -> RemoteJudge:
    """A judge built by ``factory`` on the cluster (one replica per GPU), used through the Judge protocol."""
    handle, _ = deploy(app_name(JUDGE_APP, name), factory, replicas, address, gpu)
    return RemoteJudge(handle, name=name)


def _off_the_event_loop(call: Callable[[], Any]) -> Any:
    """Run a blocking Serve call; from an event loop's thread (the loop checks a prompt there), in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return call()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def _unwrap(event: Event) -> Any:
    """The value of a replica's answer, or its error raised again as the same GemsError class."""
    if event[0] == "error":
        cls = getattr(errors, event[1], None)
        error = GenerationError(event[2])
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

