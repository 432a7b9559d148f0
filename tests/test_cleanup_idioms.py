"""Scope-based cleanup (cleanup.h, kernels >= 6.5): CLASS / guard / scoped_guard / scoped_cond_guard /
__free uses become edges to what the tree's DEFINE_* lines say the constructor and the destructor call
(extract_cleanup + resolve_cleanup). The C below is written for these tests in the style of cleanup.h."""

import pytest

from conftest import edges_between

# A cleanup.h of our own: the definers and the uses as macros (their bodies are not read for edges).
CLEANUP_H = r"""
#define __cleanup(fn) __attribute__((__cleanup__(fn)))
#define DEFINE_FREE(_name, _type, _free) \
	static inline void __free_##_name(void *p) { _type _T = *(_type *)p; _free; }
#define __free(_name) __cleanup(__free_##_name)
#define DEFINE_CLASS(_name, _type, _exit, _init, _init_args...) \
	typedef _type class_##_name##_t; \
	static inline void class_##_name##_destructor(_type *p) { _type _T = *p; _exit; } \
	static inline _type class_##_name##_constructor(_init_args) { _type t = _init; return t; }
#define CLASS(_name, var) \
	class_##_name##_t var __cleanup(class_##_name##_destructor) = class_##_name##_constructor
#define DEFINE_GUARD(_name, _type, _lock, _unlock) \
	DEFINE_CLASS(_name, _type, if (_T) { _unlock; }, ({ _lock; _T; }), _type _T)
#define guard(_name) CLASS(_name, __UNIQUE_ID(guard))
#define scoped_guard(_name, args...) \
	for (CLASS(_name, scope)(args); scope; scope = 0)
"""

# Classes defined by a header of the tree (line numbers matter: evidence names them).
LOCKS_H = """struct fd { unsigned long word; };
struct mutex { int owner; };
DEFINE_CLASS(fd, struct fd, fdput(_T), fdget(fd), int fd)
DEFINE_GUARD(mutex, struct mutex *, mutex_lock(_T), mutex_unlock(_T))
DEFINE_GUARD_COND(mutex, _try, mutex_trylock(_T))
DEFINE_LOCK_GUARD_1(spinlock, spinlock_t, spin_lock(_T->lock), spin_unlock(_T->lock))
DEFINE_FREE(kfree, void *, if (_T) kfree(_T))
#define spin_lock(lock) _raw_spin_lock(lock)
#define MY_GUARD mutex
"""

IMPL_C = """struct fd fdget(int fd) { struct fd f = { fd }; return f; }
void fdput(struct fd f) { }
void mutex_lock(struct mutex *m) { }
void mutex_unlock(struct mutex *m) { }
int mutex_trylock(struct mutex *m) { return 1; }
"""

USES_C = """int do_send(int fd)
{
	CLASS(fd, f)(fd);
	if (!f.word)
		return -9;
	return sock_send(f.word);
}
void locked(struct mutex *m)
{
	guard(mutex)(m);
	work(m);
}
int scoped(struct mutex *m, spinlock_t *l)
{
	scoped_guard(spinlock, l) {
		inner_work(m);
	}
	scoped_cond_guard(mutex_try, return -4, m) {
		other_work(m);
	}
	return after(m);
}
void *alloc(void)
{
	void *p __free(kfree) = kmalloc(8);
	if (!p)
		return 0;
	return_ptr(p);
}
void aliased(struct mutex *m)
{
	guard(MY_GUARD)(m);
}
"""

OLD_C = """int old_send(int fd)
{
	struct fd f = fdget(fd);
	mutex_lock(&big);
	work(f.word);
	mutex_unlock(&big);
	fdput(f);
	return 0;
}
"""


def _tree(with_defines: bool = True) -> dict[str, str]:
    files = {"net/core/impl.c": IMPL_C, "net/socket.c": USES_C, "net/old.c": OLD_C}
    if with_defines:
        files["include/linux/cleanup.h"] = CLEANUP_H
        files["include/linux/locks.h"] = LOCKS_H
    return files


def _one(cg, a: str, b: str):
    (e,) = edges_between(cg, a, b)
    return e


def _steps(e) -> list[tuple]:
    return [(s[0], s[1], s[2], s[3]) for s in e.evidence]


def test_class_constructor_and_destructor_at_scope_exit(graph_of):
    cg = graph_of(_tree())
    ctor = _one(cg, "do_send", "fdget")
    assert (ctor.kind, ctor.site, ctor.text) == ("direct", "net/socket.c:3", "CLASS(fd, f)")
    assert _steps(ctor) == [("cleanup", "constructor class_fd_constructor, by DEFINE_CLASS — CLASS(fd, f)",
                             "include/linux/locks.h", 3)]
    dtor = _one(cg, "do_send", "fdput")
    assert (dtor.kind, dtor.site) == ("direct", "net/socket.c:3")
    assert _steps(dtor) == [("scope_exit", "at scope exit (line 7): class_fd_destructor, by DEFINE_CLASS — CLASS(fd, f)",
                             "include/linux/locks.h", 3)]
    assert edges_between(cg, "do_send", "sock_send")


def test_guard_locks_and_unlocks_at_scope_exit(graph_of):
    cg = graph_of(_tree())
    lock = _one(cg, "locked", "mutex_lock")
    assert (lock.site, _steps(lock)[0][0], _steps(lock)[0][2:]) == ("net/socket.c:10", "cleanup", ("include/linux/locks.h", 4))
    unlock = _one(cg, "locked", "mutex_unlock")
    assert unlock.site == "net/socket.c:10"
    assert _steps(unlock) == [("scope_exit", "at scope exit (line 12): class_mutex_destructor, by DEFINE_GUARD — guard(mutex)",
                               "include/linux/locks.h", 4)]


def test_scoped_guard_keeps_its_body_and_calls_lock_pair(graph_of):
    cg = graph_of(_tree())
    lock = _one(cg, "scoped", "spin_lock")  # a macro calling nothing in scope: the edge goes to its name
    assert lock.site == "net/socket.c:15" and _steps(lock)[0][2:] == ("include/linux/locks.h", 6)
    unlock = _one(cg, "scoped", "spin_unlock")
    assert _steps(unlock)[0][:2] == ("scope_exit", "at scope exit (line 17): class_spinlock_destructor, by "
                                     "DEFINE_LOCK_GUARD_1 — scoped_guard(spinlock, l)")
    for inner in ("inner_work", "other_work", "after"):
        assert edges_between(cg, "scoped", inner), inner


def test_scoped_cond_guard_uses_the_base_destructor(graph_of):
    cg = graph_of(_tree())
    trylock = _one(cg, "scoped", "mutex_trylock")
    assert trylock.site == "net/socket.c:18"
    assert _steps(trylock)[0][1:] == ("constructor class_mutex_try_constructor, by DEFINE_GUARD_COND — "
                                      "scoped_cond_guard(mutex_try, return -4, m)", "include/linux/locks.h", 5)
    unlock = _one(cg, "scoped", "mutex_unlock")  # the extended class's destructor is the base class's
    assert _steps(unlock) == [("scope_exit", "at scope exit (line 20): class_mutex_destructor, by DEFINE_GUARD — "
                               "scoped_cond_guard(mutex_try, return -4, m)", "include/linux/locks.h", 4)]


def test_free_calls_the_cleanup_function_at_scope_exit(graph_of):
    cg = graph_of(_tree())
    free = _one(cg, "alloc", "kfree")
    assert free.site == "net/socket.c:25"
    assert _steps(free) == [("scope_exit", "at scope exit (line 29): __free_kfree, by DEFINE_FREE — __free(kfree)",
                             "include/linux/locks.h", 7)]
    assert edges_between(cg, "alloc", "kmalloc")


def test_class_named_through_an_object_like_macro(graph_of):
    cg = graph_of(_tree())
    assert _one(cg, "aliased", "mutex_lock").site == "net/socket.c:32"
    assert _steps(_one(cg, "aliased", "mutex_unlock"))[0][:2] == (
        "scope_exit", "at scope exit (line 33): class_mutex_destructor, by DEFINE_GUARD — guard(MY_GUARD)")


def _edge_set(cg) -> set:
    return {(e.src, e.dst, e.kind, e.file, e.line) for e in cg.all_edges()}


@pytest.mark.parametrize("with_defines", [False, True])
def test_tree_without_cleanup_h_is_unaffected(graph_of, monkeypatch, with_defines):
    """Without DEFINE_* lines no use makes an edge, and code without uses keeps the same edges."""
    from ksrcgraph import extract_cleanup

    files = _tree(with_defines=False) if not with_defines else {"net/old.c": OLD_C, "net/core/impl.c": IMPL_C}
    now = _edge_set(graph_of(files))
    monkeypatch.setattr(extract_cleanup, "scan", lambda ctx: None)
    monkeypatch.setattr(extract_cleanup, "is_use_call", lambda ctx, node: False)
    before = _edge_set(graph_of(files))
    assert now == before
    if not with_defines:  # the uses are there, the classes are not: nothing is made up
        assert not any(e[0] in ("do_send", "locked", "scoped", "alloc", "aliased") and e[1] in ("fdget", "mutex_lock", "kfree")
                       for e in now)


def test_scoped_cond_guard_fail_statement_parses():
    """The fail argument is a statement: clean makes it 0 in the head of the while the macro became."""
    from ksrcgraph.clean import clean
    from ksrcgraph.extract import extract

    src = USES_C.replace("return -4, m", "ret = -4;\n\t\tgoto out, m").encode()
    assert len(clean(src)) == len(src) and clean(src).count(b"\n") == src.count(b"\n")
    assert extract("net/socket.c", src).error_count == 0
    assert extract("net/socket.c", USES_C.encode()).error_count == 0


BLOCKS_C = """int copy_len(int __user *ulen, int klen)
{
	int len;

	scoped_user_rw_access_size(ulen, 4, efault) {
		unsafe_get_user(len, ulen, efault);
		unsafe_put_user(klen, ulen, efault);
	}
	scoped_with_kernel_creds()
		lookup_path(klen);
	scoped_class(override_creds, old, cred)
		lookup_other(klen);
	return len;
efault:
	return -14;
}
"""


def test_scoped_block_macros_of_7x_parse_and_keep_their_calls():
    """7.x uaccess / cred block macros (data/scoped_blocks.tsv) become while loops: no parse error,
    every call of their bodies kept, at its line."""
    from ksrcgraph.extract import extract

    ff = extract("net/socket.c", BLOCKS_C.encode())
    assert ff.error_count == 0
    named = {(c.callee[1], c.line) for c in ff.calls if not c.wrapper}
    assert {("unsafe_get_user", 6), ("unsafe_put_user", 7), ("lookup_path", 10), ("lookup_other", 12)} <= named
    # scoped_class is a cleanup use as well: constructor and destructor of class override_creds
    mine = {(c.callee[1], c.wrapper) for c in ff.calls if c.wrapper}
    assert mine == {("class_override_creds_constructor", "cleanup"), ("class_override_creds_destructor", "scope-exit@12")}


def test_typed_allocator_of_7x_parses_and_types_its_value():
    """kzalloc_obj(struct foo) (data/typed_alloc_macros.tsv): the type argument parses, the call is
    kept and the variable is typed by it."""
    from ksrcgraph.extract import extract

    src = b"struct gameport *make(void)\n{\n\tstruct gameport *gp = kzalloc_obj(struct gameport);\n\treturn gp;\n}\n"
    ff = extract("net/x.c", src)
    assert ff.error_count == 0
    assert [(c.callee, c.line) for c in ff.calls] == [(("v", "kzalloc_obj"), 3)]
    assert [a.rhs for a in ff.assigns] == [("t", "s:gameport")]


MORE_H = """DEFINE_CLASS(fd, struct fd, fdput(_T), fdget(fd), int fd)
EXTEND_CLASS(fd, _raw, fdget_raw(fd), int fd)
DEFINE_LOCK_GUARD_0(rcu, rcu_read_lock(), rcu_read_unlock())
DEFINE_LOCK_GUARD_1_COND(spinlock, _try, spin_trylock(_T->lock))
"""

MORE_C = """int more(int fd, spinlock_t *l)
{
	CLASS(fd_raw, f)(fd);
	guard(rcu)();
	ACQUIRE(spinlock_try, g)(l);
	CLASS_INIT(fd, h, fd_for(fd));
	return 0;
}
"""


def test_extended_class_lock_guard_0_acquire_and_class_init(graph_of):
    cg = graph_of({"include/linux/more.h": MORE_H, "net/more.c": MORE_C})
    raw = _one(cg, "more", "fdget_raw")  # EXTEND_CLASS: its own constructor ...
    assert (raw.site, _steps(raw)[0][1:]) == ("net/more.c:3", (
        "constructor class_fd_raw_constructor, by EXTEND_CLASS — CLASS(fd_raw, f)", "include/linux/more.h", 2))
    # ... and the destructor of the class it extends: fdput for f (line 3) and for h (CLASS_INIT, line 6)
    puts = {e.site: _steps(e)[0][:2] for e in edges_between(cg, "more", "fdput")}
    assert puts == {"net/more.c:3": ("scope_exit", "at scope exit (line 8): class_fd_destructor, by DEFINE_CLASS — CLASS(fd_raw, f)"),
                    "net/more.c:6": ("scope_exit", "at scope exit (line 8): class_fd_destructor, by DEFINE_CLASS — "
                                     "CLASS_INIT(fd, h, fd_for(fd))")}
    # CLASS_INIT runs its own init expression, not the constructor; the extended class has its own
    assert "fdget" not in {e.dst for e in cg.all_edges()}
    assert _one(cg, "more", "rcu_read_lock").site == "net/more.c:4"
    assert _steps(_one(cg, "more", "rcu_read_unlock"))[0][0] == "scope_exit"
    assert _steps(_one(cg, "more", "spin_trylock"))[0][1] == (
        "constructor class_spinlock_try_constructor, by DEFINE_LOCK_GUARD_1_COND — ACQUIRE(spinlock_try, g)")
    assert edges_between(cg, "more", "fd_for")
