"""borg serve that can only read: what a replica's client keys run (role "read"), so no client can write to a replica.

borg 1.4's `borg serve` has no read-only mode. This is its RepositoryServer with every RPC method that
writes, deletes or repairs taken out of the allowlist (put, delete, commit, destroy,
save_key, check, break_lock, commit_nonce_reservation, get_free_nonce, inject_exception), and open()
never creating a repository nor taking the exclusive lock. list, extract and mount work; borg create,
delete, prune, compact and init fail with InvalidRPCMethod (or PathNotAllowed). The repository's files
belong to root and are read-only to the client's account besides (ownership.own_replica_copy): this is the
second wall, not the only one.
"""

from __future__ import annotations

import os

# rollback: the client calls it when it leaves after an error; borg's rollback(cleanup=False) only forgets the
# index in memory (Repository._rollback), it writes nothing.
READ_METHODS = ("__len__", "get", "list", "scan", "negotiate", "open", "load_key", "rollback")


def serve(restrict_to_path: str) -> int:
    """Serve borg's protocol on stdin/stdout, read-only, below restrict_to_path; return 0 when the client closes."""
    from borg.remote import PathNotAllowed, RepositoryServer  # borg's own modules, from Debian's package

    class ReadOnlyServer(RepositoryServer):
        rpc_methods = READ_METHODS

        def open(self, path, create=False, lock_wait=None, lock=True, exclusive=None, append_only=False,
                 make_parent_dirs=False):  # fmt: skip
            if create or make_parent_dirs:
                raise PathNotAllowed(f"{path} (this is a read-only replica)")
            return super().open(path, False, lock_wait, lock, False, True, False)

    os.umask(0o077)
    ReadOnlyServer(restrict_to_paths=[restrict_to_path], restrict_to_repositories=None, append_only=True,
                   storage_quota=None).serve()  # fmt: skip
    return 0
