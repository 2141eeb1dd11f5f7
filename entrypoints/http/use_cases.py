from __future__ import annotations

import attrs

from application.ports import TokenService
from application.posts import AddPost, DeletePost, GetPosts
from application.users import LogIn, RegisterUser


@attrs.frozen
class UseCases:
    """What the HTTP APIs drive. Both APIs share one set: they differ on the wire only."""

    register_user: RegisterUser
    log_in: LogIn
    add_post: AddPost
    get_posts: GetPosts
    delete_post: DeletePost
    tokens: TokenService
