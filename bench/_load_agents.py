"""Simulated agents for ``bench.load``: many runs, each sending a batch a second over HTTP.

Each agent stands for one training process with ``carbon.track`` and a remote sink: it starts
its run (a :class:`carbon.wire.RunStart` of 8 GPUs, a CPU and RAM), then every second posts a
:class:`carbon.wire.Batch` with one sample per device, one row of work and the run's
cumulative totals, ``seq`` counting up, and at the end its :class:`carbon.wire.RunEnd`. It
sends as :class:`carbon.remote.sender.Sender` does: one record at a time and in order, on a
keep-alive connection of its own, with the headers, routes and JSON bodies of
:class:`carbon.remote.client.ServerClient`, and the same reading of the answers (acknowledged,
retry on network errors, 408, 429 and 5xx with exponential back-off and ``Retry-After``,
refused for good on 400/404/409/413/422, key refused on 401/403). A retried request is not an
error; it is counted. A record refused, or still not acknowledged when the agent gives up
(``drain_s`` after the schedule's end), is an error, and so is each batch not yet sent then.

All agents of a process run as asyncio tasks on one event loop (uvloop), in a process of their
own (:func:`client_main`), so the client's CPU is measured apart from the server's.
"""

from __future__ import annotations

import asyncio
import math
import random
import ssl
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Literal

import httpx
from pydantic import BaseModel, ValidationError

from carbon import wire
from carbon._version import __version__
from carbon.remote.sender import SenderTiming

RecordKind = Literal["start", "batch", "end"]

GPUS = 8
DEVICES = GPUS + 2  # 8 GPUs, the CPU, RAM
GPU_NAME = "NVIDIA H100 80GB HBM3"
PROJECTS = ("llm-pretrain", "bert-ft", "rec-ranker", "vit-distill")
_REJECTED_CODES = frozenset({400, 404, 409, 413, 422})  # as carbon.remote.client
_ACKS: dict[RecordKind, type[BaseModel]] = {
    "start": wire.StartAck,
    "batch": wire.BatchAck,
    "end": wire.RunStatusAck,
}
_TIMING = SenderTiming()


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """What one client process does.

    Attributes:
        base_url: The server, ``http://127.0.0.1:PORT``.
        keys: One ingest key per team; agent ``i`` uses ``keys[i % len(keys)]``.
        first_agent: Index of this process's first agent (agents are numbered globally).
        agents: How many agents this process runs.
        batches: Batches each agent sends, one a ``period_s``.
        period_s: Time between two batches of an agent.
        ramp_s: Agents start their runs spread evenly over this many seconds.
        timeout_s: Connect and read timeout of a request (the agent's is 10 s).
        drain_s: How long past its last batch's due time an agent keeps retrying.
        intensity: The grid intensity every run is priced with (France's static factor).
    """

    base_url: str
    keys: tuple[str, ...]
    first_agent: int
    agents: int
    batches: int
    period_s: float
    ramp_s: float
    timeout_s: float
    drain_s: float
    intensity: wire.IntensityInfo


@dataclass(slots=True)
class AgentResult:
    """What one agent sent and had acknowledged, for the database checks.

    Attributes:
        run_id: The agent's run.
        team: Index of the team (and key) it sent with.
        started: Whether its start was acknowledged.
        ended: Whether its end was acknowledged.
        acked: ``seq`` -> ``stored`` of each acknowledged batch (``False``: a repeat the
            server had stored already).
        sample_energy_j: Per device, the energy of the samples of acknowledged batches.
        totals_energy_j: Per device, the cumulative energy of the last acknowledged batch.
        steps: Steps in the last acknowledged batch's totals.
        work_rows: Rows of work in acknowledged batches.
    """

    run_id: str
    team: int
    started: bool = False
    ended: bool = False
    acked: dict[int, bool] = field(default_factory=dict)
    sample_energy_j: list[float] = field(default_factory=lambda: [0.0] * DEVICES)
    totals_energy_j: list[float] = field(default_factory=lambda: [0.0] * DEVICES)
    steps: int = 0
    work_rows: int = 0


@dataclass(slots=True)
class ClientReport:
    """What one client process measured.

    Attributes:
        agents: Each agent's result.
        latency_s: Per record kind, the time of every HTTP request (each try), seconds.
        lag_s: Per acknowledged batch, its acknowledgement's time after it was due.
        requests: HTTP requests made (tries included).
        retries: Tries that had to be repeated, by cause (``429``, ``503``, ``ReadTimeout``).
        errors: Records refused or never acknowledged, by cause.
        error_examples: A few error messages.
        cpu_s: The process's CPU time from the go to its last agent's end.
        wall_s: Wall time from the go to the last agent's end.
        loop_lag_s: How late the event loop woke a 50 ms sleeper, each time (client saturation).
        go_at: The common start, ``time.monotonic()`` (the same clock in every process).
        last_ack_at: ``time.monotonic()`` of the last acknowledgement.
    """

    agents: list[AgentResult] = field(default_factory=list)
    latency_s: dict[str, list[float]] = field(
        default_factory=lambda: {"start": [], "batch": [], "end": []}
    )
    lag_s: list[float] = field(default_factory=list)
    requests: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    error_examples: list[str] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    loop_lag_s: list[float] = field(default_factory=list)
    go_at: float = 0.0
    last_ack_at: float = 0.0


def device_specs() -> list[wire.DeviceSpec]:
    """The devices of one node: 8 H100s read through their energy counters, a CPU, RAM."""
    gpus = [
        wire.DeviceSpec(
            position=i,
            component="gpu",
            name=GPU_NAME,
            method="nvml_counter",
            provenance="measured",
            detail="NVML total energy counter (simulated by bench.load)",
            index=i,
            uuid=f"GPU-{uuid.UUID(int=i)}",
            power_limit_w=700.0,
            memory_bytes=80 * 2**30,
        )
        for i in range(GPUS)
    ]
    return [
        *gpus,
        wire.DeviceSpec(
            position=GPUS,
            component="cpu",
            name="AMD EPYC 9654 96-Core Processor",
            method="tdp_estimate",
            provenance="estimated",
            detail="Estimate from TDP and load (simulated by bench.load)",
            power_limit_w=360.0,
        ),
        wire.DeviceSpec(
            position=GPUS + 1,
            component="ram",
            name="1536.0 GiB RAM",
            method="ram_estimate",
            provenance="estimated",
            detail="Estimate from DIMM count (simulated by bench.load)",
            memory_bytes=1536 * 2**30,
        ),
    ]


class SimulatedRun:
    """One agent's run: its start, its batches in order with cumulative totals, its end.

    Powers follow a random walk per device (GPUs 250-700 W, the CPU 90-300 W, RAM a steady
    160 W); each batch covers about a second (1 s ± 2 ms, as the sampler's intervals do).
    """

    def __init__(self, index: int, intensity: wire.IntensityInfo) -> None:
        self.index = index
        self.run_id = uuid.uuid4().hex
        self.intensity = intensity
        self._rng = random.Random(index)
        self._power_w = [self._rng.uniform(300.0, 650.0) for _ in range(GPUS)] + [150.0, 160.0]
        self._end_s = 0.0
        self._energy_j = [0.0] * DEVICES
        self._steps = 0

    def start(self, started_at: datetime) -> wire.RunStart:
        """The run's start record."""
        return wire.RunStart(
            id=self.run_id,
            project=PROJECTS[self.index % len(PROJECTS)],
            name=f"load-agent-{self.index:04d}",
            kind="training",
            started_at=started_at,
            host=f"node-{self.index:04d}",
            region="FRA",
            pue=1.0,
            intensity=self.intensity,
            sample_hz=10.0,
            carbon_version=__version__,
            simulated=True,
            hardware={"gpus": GPUS, "gpu_name": GPU_NAME},
            compression={"precision": "bf16"},
            tags={"bench": "load"},
            devices=device_specs(),
        )

    def batch(self, seq: int) -> wire.Batch:
        """Batch ``seq``: the next second of every device, a row of work, the totals so far."""
        rng = self._rng
        interval_s = 1.0 + rng.uniform(-0.002, 0.002)
        self._end_s += interval_s
        energy_j = []
        utilization: list[float | None] = []
        for position in range(DEVICES):
            if position < GPUS:
                power_w = min(700.0, max(250.0, self._power_w[position] + rng.gauss(0.0, 25.0)))
                utilization.append(round(min(1.0, power_w / 700.0 + 0.05), 3))
            elif position == GPUS:
                power_w = min(300.0, max(90.0, self._power_w[position] + rng.gauss(0.0, 10.0)))
                utilization.append(round(power_w / 300.0, 3))
            else:
                power_w = self._power_w[position]
                utilization.append(None)
            self._power_w[position] = power_w
            energy_j.append(power_w * interval_s)
            self._energy_j[position] += power_w * interval_s
        steps = rng.randint(2, 5)
        self._steps += steps
        return wire.Batch(
            run_id=self.run_id,
            seq=seq,
            sample_device=list(range(DEVICES)),
            sample_offset_s=[self._end_s] * DEVICES,
            sample_interval_s=[interval_s] * DEVICES,
            sample_energy_j=energy_j,
            sample_utilization=utilization,
            work_offset_s=[self._end_s],
            work_interval_s=[interval_s],
            work_steps=[steps],
            work_samples=[steps * 64],
            work_tokens=[steps * 64 * 2048],
            work_flops=[steps * 64 * 2048 * 6 * 7e9],
            totals=wire.Totals(
                duration_s=self._end_s,
                device_energy_j=list(self._energy_j),
                steps=self._steps,
                samples=self._steps * 64,
                tokens=self._steps * 64 * 2048,
                flops=self._steps * 64 * 2048 * 6 * 7e9,
                flops_method="given",
                precision="bf16",
                metrics={"loss": round(2.0 / math.sqrt(1.0 + self._steps), 6)},
            ),
        )

    def end(self) -> wire.RunEnd:
        """The run's end record: completed."""
        return wire.RunEnd(run_id=self.run_id, status="completed", ended_at=datetime.now(UTC))


class _Agent:
    """One agent's sender: posts records in order, retrying each until acknowledged."""

    def __init__(
        self, plan: LoadPlan, index: int, http: httpx.AsyncClient, report: ClientReport
    ) -> None:
        self.plan = plan
        self.run = SimulatedRun(index, plan.intensity)
        self.http = http
        self.report = report
        team = index % len(plan.keys)
        self.result = AgentResult(run_id=self.run.run_id, team=team)
        self._failures = 0

    async def main(self, go_at: float) -> None:
        """Start the run at its slot of the ramp, send a batch each period, end the run."""
        plan = self.plan
        offset = plan.ramp_s * (self.run.index - plan.first_agent) / max(1, plan.agents)
        begin = go_at + offset
        give_up_at = begin + (plan.batches + 1) * plan.period_s + plan.drain_s
        await _sleep_until(begin)
        path = "/api/v1/runs"
        body = self.run.start(datetime.now(UTC)).model_dump_json().encode()
        self.result.started = await self._deliver("start", path, body, give_up_at) is not None
        if not self.result.started:
            return
        run_path = f"/api/v1/runs/{self.run.run_id}"
        for seq in range(plan.batches):
            due = begin + (seq + 1) * plan.period_s
            await _sleep_until(due)
            if time.monotonic() > give_up_at:  # too far behind: the rest are errors
                left = plan.batches - seq
                self._error("batch not sent in time", f"{left} batches left at the deadline", left)
                break
            batch = self.run.batch(seq)
            ack = await self._deliver(
                "batch", f"{run_path}/batches", batch.model_dump_json().encode(), give_up_at
            )
            if isinstance(ack, wire.BatchAck):
                now = time.monotonic()
                self.report.lag_s.append(now - due)
                self.report.last_ack_at = max(self.report.last_ack_at, now)
                self._count(batch, ack)
        body = self.run.end().model_dump_json().encode()
        self.result.ended = (
            await self._deliver("end", f"{run_path}/end", body, give_up_at) is not None
        )

    def _count(self, batch: wire.Batch, ack: wire.BatchAck) -> None:
        result = self.result
        result.acked[batch.seq] = ack.stored
        for position, energy_j in zip(batch.sample_device, batch.sample_energy_j, strict=True):
            result.sample_energy_j[position] += energy_j
        result.totals_energy_j = list(batch.totals.device_energy_j)
        result.steps = batch.totals.steps
        result.work_rows += len(batch.work_offset_s)

    async def _deliver(
        self, kind: RecordKind, path: str, body: bytes, give_up_at: float
    ) -> BaseModel | None:
        """Post one record until acknowledged; ``None`` when refused or given up (an error)."""
        report = self.report
        while True:
            retry_after_s: float | None = None
            begin = time.perf_counter()
            try:
                response = await self.http.post(path, content=body)
            except httpx.HTTPError as exc:
                report.latency_s[kind].append(time.perf_counter() - begin)
                report.requests += 1
                cause = type(exc).__name__
            else:
                report.latency_s[kind].append(time.perf_counter() - begin)
                report.requests += 1
                code = response.status_code
                if 200 <= code < 300:
                    try:
                        ack = _ACKS[kind].model_validate_json(response.content)
                    except ValidationError:
                        cause = f"{code} without an acknowledgement"
                    else:
                        self._failures = 0
                        return ack
                elif code in (401, 403) or code in _REJECTED_CODES:
                    if kind == "start" and code == 404:  # as ServerClient.send: retry
                        cause = "404"
                    else:
                        self._error(f"{kind} {code}", f"{kind} {path}: HTTP {code} {response.text}")
                        return None
                else:
                    cause = str(code)
                    retry_after_s = _retry_after_s(response.headers.get("Retry-After"))
            report.retries[cause] += 1
            self._failures += 1
            delay_s = self._backoff_s(retry_after_s)
            if time.monotonic() + delay_s > give_up_at:
                self._error(f"{kind} not acknowledged", f"{kind} {path}: gave up after {cause}")
                return None
            await asyncio.sleep(delay_s)

    def _backoff_s(self, retry_after_s: float | None) -> float:
        """The sender's back-off: exponential with jitter, never less than ``Retry-After``."""
        exponent = min(self._failures - 1, 30)
        delay_s = min(_TIMING.max_backoff_s, _TIMING.initial_backoff_s * 2.0**exponent)
        delay_s *= random.uniform(0.5, 1.0)
        if retry_after_s is not None:
            delay_s = max(delay_s, min(retry_after_s, _TIMING.max_retry_after_s))
        return delay_s

    def _error(self, cause: str, message: str, count: int = 1) -> None:
        self.report.errors[cause] += count
        if len(self.report.error_examples) < 10:
            self.report.error_examples.append(message[:300])


def _retry_after_s(value: str | None) -> float | None:
    """``Retry-After`` in seconds when it is a number (the server sends numbers)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


async def _sleep_until(moment: float) -> None:
    delay_s = moment - time.monotonic()
    if delay_s > 0:
        await asyncio.sleep(delay_s)


async def _watch_loop(lags_s: list[float], stop: asyncio.Event) -> None:
    """Sleep 50 ms again and again, noting how late each wake-up is."""
    while not stop.is_set():
        begin = time.monotonic()
        await asyncio.sleep(0.05)
        lags_s.append(time.monotonic() - begin - 0.05)


async def _run(plan: LoadPlan, conn: Connection) -> ClientReport:
    report = ClientReport()
    # One TLS context for all clients (each would load the CA bundle; the server is plain
    # HTTP on loopback, so it is never used).
    tls = ssl.create_default_context()
    clients = [
        httpx.AsyncClient(
            base_url=plan.base_url,
            headers={
                "Authorization": f"Bearer {plan.keys[index % len(plan.keys)]}",
                "User-Agent": f"carbon/{__version__}",
                "Content-Type": "application/json",
            },
            timeout=httpx.Timeout(plan.timeout_s),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            verify=tls,
        )
        for index in range(plan.first_agent, plan.first_agent + plan.agents)
    ]
    agents = [
        _Agent(plan, plan.first_agent + i, client, report) for i, client in enumerate(clients)
    ]
    report.agents = [agent.result for agent in agents]
    conn.send("ready")
    go_at = float(conn.recv())
    await _sleep_until(go_at)
    report.go_at = go_at
    cpu_begin = time.process_time()
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_loop(report.loop_lag_s, stop))
    await asyncio.gather(*(agent.main(go_at) for agent in agents))
    report.cpu_s = time.process_time() - cpu_begin
    report.wall_s = time.monotonic() - go_at
    stop.set()
    await watcher
    for client in clients:
        await client.aclose()
    return report


def client_main(plan: LoadPlan, conn: Connection) -> None:
    """A client process: make its agents, say ready, wait for the go, run, send the report."""
    import uvloop

    conn.send(uvloop.run(_run(plan, conn)))
    conn.close()
