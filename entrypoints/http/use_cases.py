from __future__ import annotations

import attrs

from application.callers import ResolveCaller
from application.posts import AddPost, DeletePost, GetPosts
from application.users import LogIn, RegisterUser


@attrs.frozen
class UseCases:
    """What the HTTP APIs drive. Both APIs share one set: they differ on the wire only."""

    resolve_caller: ResolveCaller
    register_user: RegisterUser
    log_in: LogIn
    add_post: AddPost
    get_posts: GetPosts
    delete_post: DeletePost
