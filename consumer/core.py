"""The consumer core: one queue message in, one verdict (ack or retry with a delay) out."""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass

import httpx

from consumer.crawl import StreamerCrawl
from consumer.result import CrawlResult
from shared import messages, redaction, store
from shared.batch import run_statement
from shared.budget import EXTERNAL, INTERNAL, Budget
from shared.config import Settings
from shared.errors import BudgetExhausted, ConfigError, DatabaseError, MalformedMessage, QueueError
from shared.fanout import fan_out
from shared.logs import EventLog, Redactor, log_bug
from shared.metered import MeteredDatabase, MeteredQueue
from shared.notify import announce_run_finished
from shared.ports import Clock, OutgoingMessage, Ports, Row
from shared.retry_policy import Action, Decision, decide
from shared.states import Outcome, StopReason
from shared.timefmt import to_rfc3339

log = logging.getLogger("clipcrawler.consumer")


@dataclass(frozen=True)
class Verdict:
    """What the entry does with the message: ack, or retry after `delay_seconds`."""

    ack: bool
    delay_seconds: int = 0
    outcome: Outcome | None = None
    detail: str = ""
    subrequests: int = 0
    external: int = 0  # of which fetches (Helix, token)
    internal: int = 0  # of which D1 calls and queue sends
    run_finished: bool = False


async def handle_message(
    body: object, attempts: int, ports: Ports, settings: Settings, rng: random.Random | None = None
) -> Verdict:
    """Process one delivery. Never raises: bad input is dead-lettered and acked, errors become a retry."""
    redaction.remember_settings(settings)
    budget = Budget(*settings.limits)
    try:
        return await _handle(body, attempts, ports, settings, rng, budget)
    except (DatabaseError, QueueError, BudgetExhausted) as exc:  # while a failure was recorded: tried again
        return _not_handled(exc, settings, budget)
    except Exception as exc:  # a bug: the queue tries again too, so the message is not lost
        log_bug("consumer.handle_message", exc)
        return _not_handled(exc, settings, budget)


def _not_handled(exc: Exception, settings: Settings, budget: Budget) -> Verdict:
    detail = redaction.scrub(f"{type(exc).__name__}: {exc}")
    log.warning("message not handled, retried: %s", detail)
    return _verdict(Decision(Action.RETRY, settings.retry_delay_seconds), Outcome.TRANSIENT, detail, budget)


async def _handle(
    body: object, attempts: int, ports: Ports, settings: Settings, rng: random.Random | None, budget: Budget
) -> Verdict:
    db = MeteredDatabase(ports.db, budget)
    queue = MeteredQueue(ports.queue, budget)
    events = EventLog(Redactor.for_settings(settings))
    jitter = (rng or random).random()
    try:
        message = messages.decode(body)
    except MalformedMessage as exc:
        await _dead_letter(db, ports.clock, body, str(exc))
        return _logged(
            events,
            None,
            attempts,
            _verdict(Decision(Action.ACK), Outcome.MALFORMED, str(exc), budget),
            budget,
        )

    if isinstance(message, messages.FanOut):
        return await _fan_out(message, body, attempts, db, queue, ports, settings, events, jitter)
    crawl = StreamerCrawl(message, db, _http(ports), settings, ports.clock)
    try:
        result = await crawl.run()
    except BudgetExhausted as exc:
        result = CrawlResult(Outcome.TRANSIENT, str(exc), job=crawl.job)
    except (DatabaseError, QueueError) as exc:  # retry (and in the end fail) rather than crash
        log.warning("job %s: %s: %s", message.job_id, type(exc).__name__, exc)
        result = CrawlResult(Outcome.TRANSIENT, f"{type(exc).__name__}: {exc}", job=crawl.job)
    except Exception as exc:  # a bug: retried and in the end failed like a D1 error, but logged as a bug
        log_bug("consumer.crawl", exc, job_id=message.job_id)
        result = CrawlResult(Outcome.TRANSIENT, f"{type(exc).__name__}: {exc}", job=crawl.job)
    if crawl.helix is not None and crawl.helix.token is not None:
        redaction.remember(crawl.helix.token.access_token)  # a token minted here: a secret from now on

    decision = decide(
        result.outcome,
        attempts=attempts,
        max_retries=settings.max_retries,
        now=ports.clock.now(),
        base_delay=settings.retry_delay_seconds,
        retry_at=result.retry_at,
        jitter=jitter,
        busy=message.busy,
    )
    if decision.action is Action.REQUEUE:
        busy = message.busy + 1 if result.outcome is Outcome.BUSY else 0
        continuation = messages.CrawlJob(
            message.run_id, message.job_id, message.streamer_id, message.seq + 1, busy
        )
        try:
            await queue.send_batch([OutgoingMessage(continuation.encode(), decision.delay_seconds)])
        except QueueError as exc:
            # The job is queued in D1 with its progress; a retry of this message resumes it.
            log.warning("job %s: continuation not sent: %s", message.job_id, exc)
            decision = Decision(Action.RETRY, max(1, decision.delay_seconds))
    elif decision.action is Action.FAIL:
        try:
            if result.outcome is Outcome.BUSY:
                # The job is someone else's, alive: only this copy of its message ends here.
                reason = (
                    f"{result.reason} through {message.busy + 1} deliveries of this message, past its "
                    "lease; this copy is dropped and the holder carries on"
                )
                await _dead_letter(db, ports.clock, body, reason, job_id=message.job_id)
                result.reason = reason
            elif result.job is None and result.outcome is Outcome.PERMANENT:
                await _dead_letter(db, ports.clock, body, result.reason)
            else:
                result.finished_run = await _fail_job(
                    db, ports.clock, message, result.reason, body=body, calls=result.unreported
                )
        except (DatabaseError, BudgetExhausted) as exc:
            log.warning("job %s: failure not recorded: %s", message.job_id, exc)
            return _logged(
                events,
                message,
                attempts,
                _verdict(
                    Decision(Action.RETRY, settings.retry_delay_seconds),
                    result.outcome,
                    result.reason,
                    budget,
                ),
                budget,
            )
    if result.finished_run is not None:
        await announce_run_finished(
            message.run_id, db=db, http=ports.http, settings=settings, events=events, row=result.finished_run
        )
    return _logged(
        events,
        message,
        attempts,
        _verdict(decision, result.outcome, result.reason, budget, result.run_finished),
        budget,
    )


def _http(ports: Ports) -> httpx.AsyncClient:
    """The HTTP client a crawl calls Twitch through; a consumer built without one is misconfigured."""
    if ports.http is None:
        raise ConfigError("the consumer's ports have no http client: a crawl calls Twitch")
    return ports.http


async def _fan_out(
    message: messages.FanOut,
    body: object,
    attempts: int,
    db: MeteredDatabase,
    queue: MeteredQueue,
    ports: Ports,
    settings: Settings,
    events: EventLog,
    jitter: float,
) -> Verdict:
    """Enqueue one slice of a run's streamers (and hand on the rest)."""
    budget = db.budget
    try:
        sliced = await fan_out(
            db, queue, message.run_id, message.after, settings=settings, clock=ports.clock, http=ports.http
        )
    except (DatabaseError, QueueError, BudgetExhausted) as exc:
        detail = f"fan-out of run {message.run_id} after {message.after!r}: {type(exc).__name__}: {exc}"
        decision = decide(
            Outcome.TRANSIENT,
            attempts=attempts,
            max_retries=settings.max_retries,
            now=ports.clock.now(),
            base_delay=settings.retry_delay_seconds,
            jitter=jitter,
        )
        if decision.action is Action.FAIL:
            # The producer's sweep resumes a fan-out that stopped; record why this one gave up.
            await _dead_letter(db, ports.clock, message.encode(), detail)
            detail = redaction.scrub(detail)
        events.emit(
            "fanout_handled",
            level=logging.WARNING,
            run_id=message.run_id,
            after=message.after,
            outcome="transient",
            detail=detail,
        )
        return _verdict(decision, Outcome.TRANSIENT, detail, budget)
    if not sliced.run_found:
        reason = f"fan-out message names run {message.run_id}, which does not exist"
        await _dead_letter(db, ports.clock, body, reason)
        events.emit(
            "fanout_handled",
            level=logging.WARNING,
            run_id=message.run_id,
            after=message.after,
            outcome=Outcome.PERMANENT.value,
            detail=reason,
        )
        return _verdict(Decision(Action.ACK), Outcome.PERMANENT, reason, budget)
    if sliced.finished_run is not None:
        await announce_run_finished(
            message.run_id, db=db, http=ports.http, settings=settings, events=events, row=sliced.finished_run
        )
    outcome = Outcome.DONE if sliced.owned else Outcome.DUPLICATE
    events.emit(
        "fanout_handled",
        run_id=message.run_id,
        after=message.after,
        outcome=outcome.value,
        jobs=sliced.jobs,
        more=sliced.more,
        subrequests=budget.total,
    )
    return _verdict(
        Decision(Action.ACK), outcome, f"{sliced.jobs} jobs enqueued", budget, sliced.finished_run is not None
    )


async def handle_dead_letter(body: object, ports: Ports, settings: Settings) -> Verdict:
    """A dead-lettered message: record it and fail its job, so its run can finish. Never raises."""
    redaction.remember_settings(settings)
    budget = Budget(*settings.limits)
    try:
        return await _handle_dead_letter(body, ports, settings, budget)
    except (DatabaseError, BudgetExhausted) as exc:  # D1 failing: the dead-letter queue delivers it again
        return _dead_letter_not_recorded(exc, settings, budget)
    except Exception as exc:  # a bug: delivered again too, so the dead letter is not lost
        log_bug("consumer.handle_dead_letter", exc)
        return _dead_letter_not_recorded(exc, settings, budget)


def _dead_letter_not_recorded(exc: Exception, settings: Settings, budget: Budget) -> Verdict:
    detail = redaction.scrub(f"{type(exc).__name__}: {exc}")
    log.warning("dead letter not recorded, retried: %s", detail)
    return _verdict(Decision(Action.RETRY, settings.retry_delay_seconds), Outcome.TRANSIENT, detail, budget)


async def _handle_dead_letter(body: object, ports: Ports, settings: Settings, budget: Budget) -> Verdict:
    db = MeteredDatabase(ports.db, budget)
    events = EventLog(Redactor.for_settings(settings))
    try:
        message = messages.decode(body)
    except MalformedMessage as exc:
        await _dead_letter(db, ports.clock, body, f"dead-lettered and malformed: {exc}", source="dlq")
        return _logged(
            events,
            None,
            0,
            _verdict(Decision(Action.ACK), Outcome.MALFORMED, str(exc), budget),
            budget,
            event="dead_letter_handled",
        )
    reason = "dead-lettered: the consumer failed on every delivery"
    if isinstance(message, messages.FanOut):
        await _dead_letter(db, ports.clock, body, f"{reason} (fan-out of run {message.run_id})", source="dlq")
        return _verdict(Decision(Action.ACK), Outcome.PERMANENT, reason, budget)
    finished = await _fail_job(db, ports.clock, message, reason, source="dlq", body=body)
    if finished is not None:
        await announce_run_finished(
            message.run_id, db=db, http=ports.http, settings=settings, events=events, row=finished
        )
    return _logged(
        events,
        message,
        0,
        _verdict(Decision(Action.ACK), Outcome.PERMANENT, reason, budget, finished is not None),
        budget,
        event="dead_letter_handled",
    )


async def _fail_job(
    db: MeteredDatabase,
    clock: Clock,
    message: messages.CrawlJob,
    reason: str,
    source: str = "consumer",
    body: object = None,
    calls: store.Calls | None = None,
) -> Row | None:
    """Fail the job the message names, once; the run's row when that closed the run.

    From the dead-letter queue, the message is recorded too when its failure applied. From either queue,
    a message that names no job (its id with another run or streamer) is recorded instead.
    """
    now = to_rfc3339(clock.now())
    token = uuid.uuid4().hex
    text = messages.body_text(body if body is not None else message.encode())
    batch = store.fail_job(
        message.job_id,
        message.run_id,
        message.streamer_id,
        token,
        now,
        calls or store.Calls(d1=1, invocation_total=db.budget.total + 1),
        StopReason.FAILED,
        reason,
    )
    if source == "dlq":
        batch.add(store.record_dead_letter(source, message.job_id, text, reason, now, token), "dead_letter")
    unnamed = (
        f"{reason}; but no job {message.job_id} of run {message.run_id} "
        f"for streamer {message.streamer_id!r} exists"
    )
    batch.add(
        store.record_dead_letter_unless_named_job(
            source, message.job_id, message.run_id, message.streamer_id, text, unnamed, now
        ),
        "unnamed",
    )
    return (await batch.run(db)).first("finished_run")


async def _dead_letter(
    db: MeteredDatabase,
    clock: Clock,
    body: object,
    reason: str,
    source: str = "consumer",
    job_id: int | None = None,
) -> None:
    """Record an unprocessable message; the text is made storable, so only D1 itself can make this fail."""
    await run_statement(
        db,
        store.record_dead_letter(source, job_id, messages.body_text(body), reason, to_rfc3339(clock.now())),
    )


def _logged(
    events: EventLog,
    message: messages.CrawlJob | None,
    attempts: int,
    verdict: Verdict,
    budget: Budget,
    *,
    event: str = "message_handled",
) -> Verdict:
    """Write the verdict's one structured log line, then hand it back."""
    level = (
        logging.INFO
        if verdict.outcome not in (Outcome.TRANSIENT, Outcome.PERMANENT, Outcome.MALFORMED)
        else logging.WARNING
    )
    events.emit(
        event,
        level=level,
        run_id=message.run_id if message else None,
        job_id=message.job_id if message else None,
        streamer=message.streamer_id if message else None,
        seq=message.seq if message else None,
        attempts=attempts or None,
        outcome=verdict.outcome,
        action="ack" if verdict.ack else "retry",
        delay_seconds=verdict.delay_seconds or None,
        helix_calls=budget.calls["helix"],
        d1_calls=budget.calls["d1"],
        queue_sends=budget.calls["queue"],
        subrequests=verdict.subrequests,
        run_finished=verdict.run_finished or None,
        detail=verdict.detail or None,
    )
    return verdict


def _verdict(
    decision: Decision, outcome: Outcome, detail: str, budget: Budget, run_finished: bool = False
) -> Verdict:
    retry = decision.action is Action.RETRY
    return Verdict(
        ack=not retry,
        delay_seconds=decision.delay_seconds if retry else 0,
        outcome=outcome,
        detail=detail,
        subrequests=budget.total,
        external=budget.used[EXTERNAL],
        internal=budget.used[INTERNAL],
        run_finished=run_finished,
    )
