from __future__ import annotations

import attrs

from application.callers import ResolveCaller
from application.posts import AddPost, DeletePost, GetPosts
from application.sessions import EndAllSessions, EndSession, ListSessions, RefreshSession
from application.users import ChangePassword, DeleteAccount, GetAccount, LogIn, RegisterUser
from entrypoints.http.wire import Limits


@attrs.frozen
class UseCases:
    """What the HTTP APIs drive. Both APIs share one set: they differ on the wire only."""

    resolve_caller: ResolveCaller
    register_user: RegisterUser
    log_in: LogIn
    add_post: AddPost
    get_posts: GetPosts
    delete_post: DeletePost
    refresh_session: RefreshSession
    list_sessions: ListSessions
    end_session: EndSession
    end_all_sessions: EndAllSessions
    get_account: GetAccount
    change_password: ChangePassword
    delete_account: DeleteAccount


class Api:
    """An HTTP API: its routes drive the shared use cases under the configured limits."""

    def __init__(self, use_cases: UseCases, limits: Limits) -> None:
        self._use = use_cases
        self._limits = limits
