"""The post flows: upload a journaled post (claim, prepare, send, publish), and resume them all.

Each public operation is one generator, written once: ``Uploader`` and
``AsyncUploader`` only pump it. The journal is written between yields (the
intent before each request, the outcome after it); a post's protocol flow
runs under its own recorder through a :class:`~steadypost.flow.Drive` effect.
A driver stopped from outside (Ctrl-C, a cancelled task) closes the flow:
``GeneratorExit`` is how a flow learns it was interrupted, and the post is
then released, due again at once.

Which state a post ends in is decided by :mod:`.outcome`; :class:`.PostRun`
applies it.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from steadypost.drivers.files import FileHasher
from steadypost.drivers.observers import Tee
from steadypost.errors import (
    HostUnavailableError,
    IllegalTransitionError,
    InternalError,
    JournalError,
    LeaseHeldError,
    Outcome,
    SteadypostError,
)
from steadypost.flow import Concurrently, Drive, FileSha256, Flow, with_retries
from steadypost.journal import AddResult
from steadypost.lifecycle import outcome
from steadypost.lifecycle.recorder import PostRun
from steadypost.lifecycle.wiring import ProgressCallback, Wiring
from steadypost.models import UPLOADABLE, Post, PostState, UploadResult
from steadypost.origins import origin_of
from steadypost.platforms.base import CheckResult, PlatformUpload, UploadJob
from steadypost.policy import is_transient

log = logging.getLogger("steadypost")



def post(
    up: Wiring, added: AddResult, *, chunk_size: int | None, on_progress: ProgressCallback | None
) -> Flow[Post]:
    """Upload a post just added (or joined), unless it is already done or busy elsewhere."""
    if added.joined and added.post.state not in UPLOADABLE:
        return added.post  # already posted (or being checked): nothing to send
    return (yield from upload_post(up, added.post.post_id, chunk_size=chunk_size,
                                   on_progress=on_progress))  # fmt: skip


def upload_post(
    up: Wiring, post_id: str, *, chunk_size: int | None, on_progress: ProgressCallback | None
) -> Flow[Post]:
    """Claim the post, prepare its upload, run it under its recorder; the post as it ends."""
    run = _claim(up, post_id)
    if run is None:
        return up.journal.get(post_id)
    upload = _prepare(up, run, chunk_size)
    if isinstance(upload, Post):
        return upload
    recorder = up.observer(upload.file.size, on_progress, post_id=post_id)
    try:
        ended: Post = yield Drive(_post_flow(up, run, upload), Tee(run, recorder), run.file)
        return ended
    except GeneratorExit:  # the driver was stopped (Ctrl-C, a cancelled task)
        run.interrupted("interrupted")
        raise
    except Exception as exc:
        return _run_broke(run, exc)
    finally:
        run.close_file()


def resume_pending(up: Wiring, *, on_progress: ProgressCallback | None) -> Flow[list[Post]]:
    """Upload every post whose time has come (queued, due waiting, or orphaned).

    Posts to different sites go side by side, one lane per origin (a
    :class:`~steadypost.flow.Concurrently` effect); within a lane they go one
    after the other, so a site never gets more from us at once than before.
    A site that is down or stalls holds back only its own posts. The posts
    are returned in the order they were due.
    """
    lanes: dict[str, list[Post]] = {}
    for due in up.journal.due(now=up.clock()):
        if due.state in UPLOADABLE:
            lanes.setdefault(origin_of(due.endpoint), []).append(due)
    flows = tuple(_lane(up, posts, on_progress) for posts in lanes.values())
    if len(flows) <= 1:
        return (yield from flows[0]) if flows else []
    ended: list[list[Post]] = yield Concurrently(flows)
    order = {p.post_id: i for i, p in enumerate(p for posts in lanes.values() for p in posts)}
    return sorted((p for lane in ended for p in lane), key=lambda p: order.get(p.post_id, 0))


def _lane(up: Wiring, due: list[Post], on_progress: ProgressCallback | None) -> Flow[list[Post]]:
    """One site's due posts, one after the other; its host is asked before each (see ``_defer``)."""
    done = []
    for post in due:
        if up.cancelled():
            break
        refusal = _host_refusal(up, post.endpoint)
        if refusal is not None:
            done.append(_defer(up, post.post_id, refusal))
            continue
        done.append((yield from upload_post(up, post.post_id, chunk_size=None,
                                            on_progress=on_progress)))  # fmt: skip
    return done


# --- one run of a post ---------------------------------------------------------------------


def _claim(up: Wiring, post_id: str) -> PostRun | None:
    try:
        post = up.journal.claim(owner=up.owner, post_id=post_id, lease_s=up.post_options.lease_s)
    except (LeaseHeldError, IllegalTransitionError) as exc:
        log.info("skipping post %s: %s", post_id, exc)
        return None
    if post is None:
        return None
    return PostRun(up.journal, post, owner=up.owner, clock=up.clock, rng=up.rng,
                   policy=up.retry_policy, options=up.post_options)  # fmt: skip


def _host_refusal(up: Wiring, url: str) -> HostUnavailableError | None:
    """Why nothing should be sent to ``url``'s host now (checked before preparing a post)."""
    now = up.clock()
    return up.guard().check(url, now) or up.status_pages.refusal(url, now, up.host_store)


def _prepare(up: Wiring, run: PostRun, chunk_size: int | None) -> PlatformUpload | Post:
    """The platform's upload of a claimed post, or the post itself if it cannot start."""
    refusal = _host_refusal(up, run.post.endpoint)
    if refusal is not None:  # waits for its host, without hashing the file first
        return run.deferred(refusal)
    try:
        file = run.open_file()
    except SteadypostError as exc:
        if isinstance(exc, JournalError):
            raise
        return run.failed(exc)
    post = run.post
    job = UploadJob(
        post=post, file=file, retry=up.retry_ctx(), chunk_size=chunk_size,
        default_chunk_size=up.chunk_size, checksum=up.checksum,
        server_info=up.server_info(post.endpoint), answered=up.guard().answered(post.endpoint),
    )  # fmt: skip
    try:
        upload = up.platform(post).begin(job)
    except SteadypostError as exc:
        run.close_file()
        if isinstance(exc, JournalError):
            raise
        return run.failed(exc)
    assert run.file is not None
    run.hasher = FileHasher.start(run.file)
    return upload


def _run_broke(run: PostRun, exc: Exception) -> Post:
    """What an exception out of a post's run means; re-raises what the caller must see.

    * the post was cancelled or taken over meanwhile: that stands, quietly;
    * a bug (an exception that is not a :class:`SteadypostError`): the post
      waits with backoff like after any failed attempt, and fails after a few
      such runs; it is never put back due at once;
    * anything else (the journal failing): the post is released, due again
      at once, and the exception goes on.
    """
    if isinstance(exc, IllegalTransitionError | LeaseHeldError):
        return run.lost()
    if not isinstance(exc, SteadypostError):
        log.error("post %s: unexpected %s", run.post.post_id, type(exc).__name__, exc_info=exc)
        error = InternalError(f"steadypost failed unexpectedly: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return run.failed(error)
    run.interrupted("interrupted")
    raise exc


def hashed(flow: Flow[UploadResult], hasher: FileHasher) -> Flow[UploadResult]:
    """``flow``'s result with the file's SHA-256 from ``hasher`` (started with the upload)."""
    try:
        result = yield from flow
        sha256 = yield FileSha256(hasher)
    finally:
        hasher.stop()  # a failed upload does not need the rest of the file read
    return replace(result, sha256=sha256)


def _post_flow(up: Wiring, run: PostRun, upload: PlatformUpload) -> Flow[Post]:
    """Upload the bytes, then publish if the platform has that step."""
    try:
        yield from up.status_pages.gate(run.post.endpoint, clock=up.clock, store=up.host_store)
        assert run.hasher is not None, "_prepare starts the hasher"
        result = yield from hashed(upload.run(), run.hasher)
        platform = up.platform(run.post)
    except SteadypostError as exc:
        if isinstance(exc, IllegalTransitionError | LeaseHeldError):
            return run.lost()  # cancelled or taken over meanwhile: that stands
        if isinstance(exc, JournalError):
            raise
        return run.failed(exc)
    first = platform.publish(run.post, result.upload_url)
    if first is None:  # no publish step: the upload is the post
        return run.succeeded(result.sha256)
    if outcome.PUBLISH_SENT in run.post.extra:  # an earlier run died after sending it
        first.close()
        return run.publish_unknown()
    run.publishing(result.sha256)
    attempts = iter([first])

    def publish() -> Flow[CheckResult]:
        flow = next(attempts, None)
        if flow is None:  # a retry: only while this run still holds the post
            run.fence()
            flow = platform.publish(run.post, result.upload_url)
        assert flow is not None
        return flow

    try:
        answer: CheckResult = yield from with_retries(
            publish, up.retry_ctx(), retry_if=lambda exc: _resendable(up, exc)
        )
    except SteadypostError as exc:
        return run.publish_failed(exc)
    return run.published(answer)


def _resendable(up: Wiring, exc: BaseException) -> bool:
    """A publish is resent only when the server certainly did not act on it."""
    return (
        isinstance(exc, SteadypostError)
        and exc.outcome is Outcome.NOT_DELIVERED
        and is_transient(up.retry_policy, exc)
    )


# --- which posts are due -------------------------------------------------------------------


def _defer(up: Wiring, post_id: str, refusal: HostUnavailableError) -> Post:
    """Reschedule a due post to its host's next time, unclaimed and charged no attempt.

    A long outage then costs one journal write per post per breaker period,
    not an upload run per post per wake-up.
    """
    journal = up.journal
    with journal.atomic():
        current = journal.get(post_id)
        if current.state not in (PostState.QUEUED, PostState.WAITING):
            return current  # someone claimed it meanwhile
        ctx = outcome.Context(now=up.clock(), rng=up.rng, policy=up.retry_policy,
                              options=up.post_options)  # fmt: skip
        wait = outcome.deferred(refusal, ctx=ctx)
        return journal.transition(post_id, wait.to, event=dict(wait.event), **wait.fields)
