"""A write to FNG posted at most once: what journals and budgets share.

The ledger decides whether to post; this reads FNG's result document the same way for
both: success posts, a refusal leaves the submission open, an unusable answer is no answer
at all, and FNG's refusal of a duplicate after a lost answer means that attempt landed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from lxml import etree

from gateway.errors import OutcomeUnknown
from gateway.fng.documents import FngAnswerUnusable
from gateway.store.ledger import Ledger, LedgerKey, Outcome, Reconcile, Submitted


async def post_once(
    ledger: Ledger,
    key: LedgerKey,
    send: Callable[[], Awaitable[etree._Element]],
    *,
    payload_hash: str,
    expectations: str,
    reconcile: Reconcile,
    duplicate_code: str,
    landed: Callable[[], bytes],
) -> Submitted:
    """Post through ``send`` (an FNG write answering with a result document) once.

    ``duplicate_code`` is FNG's error code for a submission it already holds; ``landed``
    the result to record when an earlier attempt, whose answer was lost, turns out to
    have landed."""

    async def post(after_unknown: bool) -> Outcome:
        try:
            result = await send()
        except FngAnswerUnusable as exc:
            # FNG may have posted and then sent nonsense: as good as no answer at all.
            raise OutcomeUnknown(f"{exc.message}; the outcome is not known") from None
        document = etree.tostring(result, encoding="utf-8")
        if result.get("isSuccess") == "true":
            return Outcome(document, posted=True)
        codes = {error.get("code") for error in result.iterfind("Errors/Error")}
        if after_unknown and codes == {duplicate_code}:
            # The attempt whose answer was lost had landed after all.
            return Outcome(landed(), posted=True, earlier=True)
        return Outcome(document, posted=False)

    return await ledger.submit(key, payload_hash, expectations, post, reconcile)
