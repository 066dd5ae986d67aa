"""What any process knows of the PBX and asks of it, whether it holds the link or not.

The process holding the PBX link (cti/link_holder.py) answers from its own
``PbxLink``; the others forward to it (web/link_relay.py).  So a browser
connecting to any process gets its pops, its phone's state and the board, the
pages render them, and click-to-call or a pause asked of any process reaches
the PBX.  Without Redis nobody can be asked: a process alone (SQLite, the demo)
holds the link from start-up and answers everything itself.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from cti.link_holder import LinkHolder
from web.link_relay import LinkRelay, PbxUnavailable

__all__ = ["PbxUnavailable", "Switchboard"]

# The holder answers reads from memory: waiting longer would only hold up a page.
READ_WAIT = 2.0
# Longer than the AMI client's own action timeout (10 s), so the holder's answer
# (the PBX refused, or did not answer) arrives before the asker gives up.
ACTION_WAIT = 12.0


class _Asked(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BoardAsked(_Asked):
    op: Literal["board"] = "board"


class AgentStateAsked(_Asked):
    op: Literal["agent_state"] = "agent_state"
    interface: str


class ShowingAsked(_Asked):
    op: Literal["showing"] = "showing"
    agent_id: int


class PauseAsked(_Asked):
    op: Literal["pause"] = "pause"
    interface: str
    paused: bool
    reason: str = ""


class OriginateAsked(_Asked):
    op: Literal["originate"] = "originate"
    interface: str
    number: str
    caller_id: str


Asked = Annotated[
    BoardAsked | AgentStateAsked | ShowingAsked | PauseAsked | OriginateAsked,
    Field(discriminator="op"),
]
_ASKED: TypeAdapter[Asked] = TypeAdapter(Asked)


class Switchboard:
    def __init__(self, *, holder: LinkHolder, relay: LinkRelay | None = None) -> None:
        self._holder, self._relay = holder, relay

    @property
    def holding(self) -> bool:
        return self._holder.holding

    def status(self) -> dict[str, Any]:
        """The health endpoint's ``ami``: this process's link, or that it stands by."""
        if self.holding:
            return {**self._holder.link.status(), "role": "holder"}
        return {"status": "standby", "error": None, "role": "standby"}

    async def board(self) -> dict[str, Any]:
        board: dict[str, Any] = await self._ask(BoardAsked(), wait=READ_WAIT)
        return board

    async def agent_state(self, interface: str) -> dict[str, Any] | None:
        state: dict[str, Any] | None = await self._ask(
            AgentStateAsked(interface=interface), wait=READ_WAIT
        )
        return state

    async def showing(self, agent_id: int) -> dict[str, Any]:
        """The pops on the agent's screen now, for a browser that (re)connects."""
        showing: dict[str, Any] = await self._ask(ShowingAsked(agent_id=agent_id), wait=READ_WAIT)
        return showing

    async def pause(self, interface: str, *, paused: bool, reason: str = "") -> None:
        asked = PauseAsked(interface=interface, paused=paused, reason=reason)
        await self._ask(asked, wait=ACTION_WAIT)

    async def originate(self, interface: str, number: str, *, caller_id: str) -> str:
        asked = OriginateAsked(interface=interface, number=number, caller_id=caller_id)
        action_id: str = await self._ask(asked, wait=ACTION_WAIT)
        return action_id

    async def answer(self, request: dict[str, Any]) -> Any:
        """A request forwarded by another process (the relay's handler)."""
        try:
            asked = _ASKED.validate_python(request)
        except ValidationError as exc:  # another version of the desk, mid-upgrade
            message = exc.errors()[0]["msg"]
            raise PbxUnavailable(f"a request this process cannot read: {message}") from None
        if not self.holding:
            raise PbxUnavailable("the process asked no longer holds the PBX link")
        return await self._here(asked)

    async def _ask(self, asked: _Asked, *, wait: float) -> Any:
        if self.holding:
            return await self._here(asked)
        if self._relay is None:
            raise PbxUnavailable(
                "another process holds the PBX link, and without redis_url this one cannot reach it"
            )
        return await self._relay.ask(asked.model_dump(), wait=wait)

    async def _here(self, asked: _Asked) -> Any:
        link = self._holder.link
        match asked:
            case BoardAsked():
                return link.board()
            case AgentStateAsked(interface=interface):
                return link.agent_state(interface)
            case ShowingAsked(agent_id=agent_id):
                return link.recorder.showing(agent_id)
            case PauseAsked(interface=interface, paused=paused, reason=reason):
                await link.pause(interface, paused=paused, reason=reason)
                return None
            case OriginateAsked(interface=interface, number=number, caller_id=caller_id):
                return await link.originate(interface, number, caller_id=caller_id)
        raise AssertionError(f"unhandled request {asked!r}")
