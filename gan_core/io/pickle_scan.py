"""Bound what a pickle stream may build before any unpickler sees it.

Every unpickler, torch's weights-only one included, trusts the stream's shape. A 200 KB `.pth`
whose pickle nests a tuple 200,000 deep and uses it as a dict key kills CPython with a
segmentation fault: hashing the key recurses in C with no guard. A stream can also ask for
millions of tiny objects, or a memo slot numbered four billion (the C unpickler then grows its
memo table to that size). None of that needs code to run, so an allow-list of classes does
not stop it.

This module walks the opcodes with `pickletools.genops`, which reads one opcode at a time and
never recurses, and models the unpickler's stack just closely enough to know how deeply the
containers being built nest and how many values the stream pushes. Nothing is unpickled:
strings and numbers are read as opcode arguments, globals are only names.

How depth is counted (the same rule `tests/test_pickle_bounds.py` checks against Python
objects): a number, string, bytes or None is depth 0; a list, tuple, dict, set or frozenset
is 1 + the deepest thing it holds (keys and values for a dict), so an empty one is 1 and a
flat list of a million ints is 1. A call (REDUCE, NEWOBJ, BINPERSID, ...) yields what its
argument tuple holds, so its depth is the tuple's minus one: `set([1])` written by protocol 2
as `builtins.set` applied to `([1],)` is depth 1, as the set itself is. An object given a
state by BUILD is one level above that state. Containers can be filled after they have been
put inside another one (the memo lets a stream reach them again); the scan keeps links from
child to parent and carries a later growth upwards, so that trick cannot hide depth. A cycle
(a list that holds itself) is counted at most once around, not forever: recursion guards
handle cycles, long chains are what overflow the C stack.
"""
from __future__ import annotations

import io
import pickletools
import zipfile
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..errors import CheckpointError

# Real model pickles nest fewer than 50 containers deep (measured: a torch checkpoint with an
# optimizer state 5, a StyleGAN network pickle with five module levels 17). CPython's hash of
# nested tuples overflows an 8 MB C stack between 130,000 and 160,000 levels (measured), so a
# 512 KB thread stack would give out near 9,000; Python code walking the result meets the
# default recursion limit of 1,000. 1,000 leaves a wide margin on both sides.
DEFAULT_MAX_DEPTH = 1000

# Values a stream may push (new objects, memo references and marks). Each costs an unpickler
# a stack slot and usually a new object of 30-100 bytes, whatever few bytes of stream it took,
# so only an absolute bound caps the memory a stream can ask for. A bound derived from the
# stream length adds nothing: every push needs at least one opcode byte, so n bytes never push
# more than n values. 2**20 (1,048,576) bounds an unpickler at about 100 MB and this scan at
# about 80 MB and 4 seconds (measured); a checkpoint needs about 25 values per tensor: some
# 40,000 tensors, far beyond any GAN or diffusion model (SDXL has about 2,500), and a flat
# list of a million numbers still passes.
DEFAULT_MAX_ITEMS = 2**20

# Opcodes per value pushed so far. Pickler output needs at most three (a push, a memo put, an
# append or setitem); a stream that spins (memo puts, frames, POP_MARK pairs) is stopped once
# it exceeds four, so the scan's time stays proportional to what the stream could build.
OPS_PER_ITEM = 4

# Torch writes `data.pkl` stored (uncompressed); a state_dict takes about 100 bytes per
# tensor there, so 64 MiB is some 600,000 tensors. A compressed member may expand at most
# this many times (text pickles compress ~10x; a zip bomb expands ~1000x).
MAX_DATA_PKL_BYTES = 64 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100

# A module or class name longer than this is no real global; STACK_GLOBAL refuses it.
MAX_NAME_CHARS = 512
# A text opcode argument (protocol 0 INT, FLOAT, GLOBAL, ...) longer than this is no real one.
MAX_LINE_BYTES = 1 << 20

# torch.save's legacy (non-zip) format starts with this number pickled (torch.serialization).
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_INT_OPS = frozenset({"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"})

# A stack entry is None (a number, bytes or anything of depth 0), a str (a short string, kept
# so STACK_GLOBAL can be named), _LONG_STR (a longer string) or an int >= 0 (a container or
# object: an index into the node tables).
_LONG_STR = object()


@dataclass(frozen=True)
class PickleStats:
    """What one pickle stream would build.

    `protocol` is the PROTO opcode's value, or for streams without one (protocols 0 and 1) the
    highest protocol among the opcodes used. `objects` counts the new values the stream
    creates; `items` adds memo references, DUPs and marks, and is what `max_items` bounds.
    `globals` holds every GLOBAL / STACK_GLOBAL / INST name as "module.name", spelled as in
    the stream (protocol 2 writes `builtins` as `__builtin__`); `length` is the number of
    bytes up to and including STOP.
    """

    protocol: int
    max_depth: int
    objects: int
    items: int
    globals: frozenset[str]
    global_counts: dict[str, int] = field(default_factory=dict, compare=False)
    length: int = 0


class _BoundedReader:
    """A read-only view of a stream that never hands out more than `limit` bytes.

    pickletools reads an argument's length from the stream and then calls read(n): on a real
    file, read(2**60) tries to allocate that much before reading. Here a short read comes back
    instead, and pickletools reports the truncation. readline is capped the same way.
    """

    def __init__(self, raw: BinaryIO, limit: int):
        self._raw = raw
        self.end = raw.tell() + max(0, limit)

    def read(self, n: int = -1) -> bytes:
        left = self.end - self._raw.tell()
        if left <= 0:
            return b""
        return self._raw.read(left if n is None or n < 0 else min(n, left))

    def readline(self, n: int = -1) -> bytes:
        left = min(self.end - self._raw.tell(), MAX_LINE_BYTES)
        if left <= 0:
            return b""
        return self._raw.readline(left if n is None or n < 0 else min(n, left))

    def tell(self) -> int:
        return self._raw.tell()


class _Scanner:
    """The stack model of one stream (see the module docstring for the depth rule)."""

    def __init__(self, what: str, max_depth: int, max_items: int):
        self.what = what
        self.max_depth = max_depth
        self.max_items = max_items
        self.stack: list = []
        self.marks: list[int] = []
        # The memo as compact arrays (a hostile stream may fill a million slots): a node
        # index, or one of the _M_* codes; short strings are kept aside for STACK_GLOBAL.
        self.memo = array("q")
        self.memo_strings: dict[int, str] = {}
        self.memo_len = 0             # slots put so far (MEMOIZE writes at this index)
        self.depth = array("i")       # node -> depth
        self.is_tuple = bytearray()   # node -> 1 for tuples (their level counts when used)
        self.parent = array("q")      # node -> first parent link, -1 if none
        self.more_parents: dict[int, list[int]] = {}
        self.deepest = 0
        self.objects = 0
        self.items = 0
        self.ops = 0
        self.walk_steps = 0
        self.max_walk_steps = OPS_PER_ITEM * max_items + 1024
        self.globals: dict[str, int] = {}
        self.protocol = -1
        self.max_op_proto = 0
        self.end = 0
        self.handlers = {name[3:]: getattr(self, name) for name in dir(self)
                         if name.startswith("op_")}

    # -- refusals ---------------------------------------------------------------------------

    def refuse(self, why: str) -> CheckpointError:
        return CheckpointError(f"{self.what}: {why}")

    def too_deep(self, depth: int) -> CheckpointError:
        return self.refuse(
            f"its pickle nests containers at least {depth} deep (more than the {self.max_depth} "
            "allowed; real model files nest fewer than 50). Deep nesting can crash Python "
            "while the file is read, so it is refused before anything is unpickled")

    def too_many(self) -> CheckpointError:
        return self.refuse(
            f"its pickle pushes more than {self.max_items} values (objects, references and "
            "marks); refused to bound the memory reading it would take")

    # -- nodes and links --------------------------------------------------------------------

    def new_node(self, depth: int, tuple_like: bool = False) -> int:
        node = len(self.depth)
        self.depth.append(depth)
        self.is_tuple.append(1 if tuple_like else 0)
        self.parent.append(-1)
        if not tuple_like:
            if depth > self.deepest:
                self.note(depth)
        elif depth > self.max_depth + 1:
            raise self.too_deep(depth)
        return node

    def note(self, depth: int) -> None:
        """Record a depth that is part of the object being built."""
        if depth > self.deepest:
            self.deepest = depth
            if depth > self.max_depth:
                raise self.too_deep(depth)

    def count(self, entry) -> None:
        """A tuple's own level counts once it is used as data (not as call arguments)."""
        if type(entry) is int:
            self.note(self.depth[entry])

    def link(self, child, parent: int, delta: int) -> None:
        """`parent` now holds `child`: its depth is at least the child's plus `delta`."""
        if type(child) is not int:
            if delta > 0 and self.depth[parent] < delta:
                self.raise_to(parent, delta)
            return
        code = parent * 4 + delta + 1
        first = self.parent[child]
        if first == -1:
            self.parent[child] = code
        elif first != code:
            extra = self.more_parents.setdefault(child, [])
            if not extra or extra[-1] != code:
                extra.append(code)
        grown = self.depth[child] + delta
        if grown > self.depth[parent]:
            self.raise_to(parent, grown)

    def parents_of(self, node: int) -> list[int]:
        first = self.parent[node]
        if first == -1:
            return []
        return [first, *self.more_parents.get(node, ())]

    def set_depth(self, node: int, depth: int) -> None:
        self.depth[node] = depth
        if not self.is_tuple[node]:
            self.note(depth)
        elif depth > self.max_depth + 1:
            raise self.too_deep(depth)

    def raise_to(self, node: int, depth: int) -> None:
        """Raise a node's depth and carry the growth to everything that holds it.

        In streams a Pickler writes, a container is complete before anything takes it, so this
        only walks upwards for cycles and for hand-made streams. The walk skips parents on its
        own path (a cycle adds nothing), and its steps are bounded like the opcodes.
        """
        if depth <= self.depth[node]:
            return
        self.set_depth(node, depth)
        if self.parent[node] == -1:
            return
        path = [(node, iter(self.parents_of(node)))]
        on_path = {node}
        while path:
            current, todo = path[-1]
            for code in todo:
                up, delta = code >> 2, (code & 3) - 1
                self.walk_steps += 1
                if self.walk_steps > self.max_walk_steps:
                    raise self.refuse(
                        "its pickle re-links containers so often that measuring their depth "
                        f"would take more than {self.max_walk_steps} steps; refused")
                if up in on_path:
                    continue
                grown = self.depth[current] + delta
                if grown > self.depth[up]:
                    self.set_depth(up, grown)
                    if self.parent[up] != -1:
                        path.append((up, iter(self.parents_of(up))))
                        on_path.add(up)
                        break
            else:
                path.pop()
                on_path.discard(current)

    # -- stack ------------------------------------------------------------------------------

    def push(self, entry) -> None:
        self.items += 1
        self.objects += 1
        if self.items > self.max_items:
            raise self.too_many()
        self.stack.append(entry)

    def push_ref(self, entry) -> None:
        self.items += 1
        if self.items > self.max_items:
            raise self.too_many()
        self.stack.append(entry)

    def pop(self, op: str):
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise self.refuse(f"malformed pickle: {op} finds no value on the stack")
        return self.stack.pop()

    def top(self, op: str):
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise self.refuse(f"malformed pickle: {op} finds no value on the stack")
        return self.stack[-1]

    def pop_mark(self, op: str) -> list:
        if not self.marks:
            raise self.refuse(f"malformed pickle: {op} without a MARK")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def target(self, op: str) -> int:
        """The container an APPEND / SETITEM / BUILD acts on (below the popped values)."""
        entry = self.top(op)
        if type(entry) is not int:
            raise self.refuse(f"malformed pickle: {op} on a value that is not a container")
        return entry

    # -- memo -------------------------------------------------------------------------------

    def memo_put(self, index: int, entry) -> None:
        # The Pickler numbers memo slots in order, so a slot never exceeds the values pushed
        # so far. The C unpickler sizes its memo table to the highest slot: a slot of 2**32
        # from a ten-byte stream would ask it for 32 GB.
        if index < 0 or index > self.items:
            raise self.refuse(
                f"malformed pickle: memo slot {index} after only {self.items} values")
        memo = self.memo
        if index >= len(memo):
            memo.extend(array("q", [_M_UNSET]) * (index + 1 - len(memo)))
        if memo[index] == _M_UNSET:
            self.memo_len += 1
        self.memo_strings.pop(index, None)
        if type(entry) is int:
            memo[index] = entry
        elif entry is None:
            memo[index] = _M_SCALAR
        elif entry is _LONG_STR:
            memo[index] = _M_LONG_STR
        else:
            memo[index] = _M_STR
            self.memo_strings[index] = entry

    def memo_get(self, index: int):
        memo = self.memo
        code = memo[index] if 0 <= index < len(memo) else _M_UNSET
        if code >= 0:
            return code
        if code == _M_SCALAR:
            return None
        if code == _M_STR:
            return self.memo_strings[index]
        if code == _M_LONG_STR:
            return _LONG_STR
        raise self.refuse(f"malformed pickle: memo slot {index} read before it was set")

    # -- opcodes (op_<NAME>, found by name) --------------------------------------------------

    def scalar(self, arg, pos) -> None:
        self.push(None)

    op_INT = op_BININT = op_BININT1 = op_BININT2 = op_LONG = op_LONG1 = op_LONG4 = scalar
    op_BINBYTES = op_SHORT_BINBYTES = op_BINBYTES8 = op_BYTEARRAY8 = op_NEXT_BUFFER = scalar
    op_NONE = op_NEWTRUE = op_NEWFALSE = op_FLOAT = op_BINFLOAT = scalar

    def string(self, arg, pos) -> None:
        if isinstance(arg, bytes):
            self.push(None)   # a protocol 0-1 string kept as bytes: never a global's name
        else:
            self.push(arg if len(arg) <= MAX_NAME_CHARS else _LONG_STR)

    op_STRING = op_BINSTRING = op_SHORT_BINSTRING = op_UNICODE = string
    op_SHORT_BINUNICODE = op_BINUNICODE = op_BINUNICODE8 = string

    def empty_container(self, arg, pos) -> None:
        self.push(self.new_node(1))

    op_EMPTY_LIST = op_EMPTY_DICT = op_EMPTY_SET = empty_container

    def op_EMPTY_TUPLE(self, arg, pos) -> None:
        self.push(self.new_node(1, tuple_like=True))

    def small_tuple(self, n: int) -> None:
        items = [self.pop(f"TUPLE{n}") for _ in range(n)]
        node = self.new_node(1, tuple_like=True)
        for entry in items:
            self.link(entry, node, 1)
        self.push(node)

    def op_TUPLE1(self, arg, pos) -> None:
        self.small_tuple(1)

    def op_TUPLE2(self, arg, pos) -> None:
        self.small_tuple(2)

    def op_TUPLE3(self, arg, pos) -> None:
        self.small_tuple(3)

    def from_mark(self, op: str, tuple_like: bool = False, pairs: bool = False) -> None:
        items = self.pop_mark(op)
        if pairs and len(items) % 2:
            raise self.refuse(f"malformed pickle: {op} with an odd number of values")
        node = self.new_node(1, tuple_like=tuple_like)
        for entry in items:
            self.link(entry, node, 1)
        self.push(node)

    def op_TUPLE(self, arg, pos) -> None:
        self.from_mark("TUPLE", tuple_like=True)

    def op_LIST(self, arg, pos) -> None:
        self.from_mark("LIST")

    def op_DICT(self, arg, pos) -> None:
        self.from_mark("DICT", pairs=True)

    def op_FROZENSET(self, arg, pos) -> None:
        self.from_mark("FROZENSET")

    def op_APPEND(self, arg, pos) -> None:
        item = self.pop("APPEND")
        self.link(item, self.target("APPEND"), 1)

    def op_SETITEM(self, arg, pos) -> None:
        value, key = self.pop("SETITEM"), self.pop("SETITEM")
        container = self.target("SETITEM")
        self.link(key, container, 1)
        self.link(value, container, 1)

    def into_container(self, op: str, pairs: bool = False) -> None:
        items = self.pop_mark(op)
        if pairs and len(items) % 2:
            raise self.refuse(f"malformed pickle: {op} with an odd number of values")
        container = self.target(op)
        for entry in items:
            self.link(entry, container, 1)

    def op_APPENDS(self, arg, pos) -> None:
        self.into_container("APPENDS")

    def op_SETITEMS(self, arg, pos) -> None:
        self.into_container("SETITEMS", pairs=True)

    def op_ADDITEMS(self, arg, pos) -> None:
        self.into_container("ADDITEMS")

    def op_BUILD(self, arg, pos) -> None:
        state = self.pop("BUILD")
        self.link(state, self.target("BUILD"), 1)

    def op_MARK(self, arg, pos) -> None:
        self.items += 1
        if self.items > self.max_items:
            raise self.too_many()
        self.marks.append(len(self.stack))

    def op_POP(self, arg, pos) -> None:
        if self.marks and self.marks[-1] == len(self.stack):
            self.marks.pop()      # POP on a mark drops the mark, as the unpickler does
        else:
            self.count(self.pop("POP"))

    def op_POP_MARK(self, arg, pos) -> None:
        for entry in self.pop_mark("POP_MARK"):
            self.count(entry)

    def op_DUP(self, arg, pos) -> None:
        self.push_ref(self.top("DUP"))

    def get(self, arg, pos) -> None:
        self.push_ref(self.memo_get(int(arg)))

    op_GET = op_BINGET = op_LONG_BINGET = get

    def put(self, arg, pos) -> None:
        self.memo_put(int(arg), self.top("PUT"))

    op_PUT = op_BINPUT = op_LONG_BINPUT = put

    def op_MEMOIZE(self, arg, pos) -> None:
        self.memo_put(self.memo_len, self.top("MEMOIZE"))

    def add_global(self, name: str) -> None:
        self.globals[name] = self.globals.get(name, 0) + 1

    def op_GLOBAL(self, arg, pos) -> None:
        module, _, attr = str(arg).partition(" ")
        self.add_global(f"{module}.{attr}")
        self.push(None)

    def op_STACK_GLOBAL(self, arg, pos) -> None:
        attr, module = self.pop("STACK_GLOBAL"), self.pop("STACK_GLOBAL")
        if type(attr) is not str or type(module) is not str:
            raise self.refuse(
                "malformed pickle: STACK_GLOBAL needs two short strings (a module and a name) "
                "on the stack")
        self.add_global(f"{module}.{attr}")
        self.push(None)

    def ext(self, arg, pos) -> None:
        self.add_global(f"<copyreg extension {arg}>")
        self.push(None)

    op_EXT1 = op_EXT2 = op_EXT4 = ext

    def call_result(self, args_entries: list, delta: int) -> int:
        node = self.new_node(0)
        for entry in args_entries:
            self.link(entry, node, delta)
        return node

    def op_REDUCE(self, arg, pos) -> None:
        args = self.pop("REDUCE")
        self.pop("REDUCE")                    # the callable
        self.push(self.call_result([args], -1))

    def op_NEWOBJ(self, arg, pos) -> None:
        args = self.pop("NEWOBJ")
        self.pop("NEWOBJ")                    # the class
        self.push(self.call_result([args], -1))

    def op_NEWOBJ_EX(self, arg, pos) -> None:
        kwargs, args = self.pop("NEWOBJ_EX"), self.pop("NEWOBJ_EX")
        self.pop("NEWOBJ_EX")
        self.push(self.call_result([args, kwargs], -1))

    def op_INST(self, arg, pos) -> None:
        items = self.pop_mark("INST")
        module, _, attr = str(arg).partition(" ")
        self.add_global(f"{module}.{attr}")
        self.push(self.call_result(items, 0))

    def op_OBJ(self, arg, pos) -> None:
        items = self.pop_mark("OBJ")
        if not items:
            raise self.refuse("malformed pickle: OBJ without a class")
        self.push(self.call_result(items[1:], 0))

    def op_PERSID(self, arg, pos) -> None:
        self.push(self.new_node(0))

    def op_BINPERSID(self, arg, pos) -> None:
        self.push(self.call_result([self.pop("BINPERSID")], -1))

    def op_READONLY_BUFFER(self, arg, pos) -> None:
        self.top("READONLY_BUFFER")

    def op_PROTO(self, arg, pos) -> None:
        if not 0 <= int(arg) <= 5:
            raise self.refuse(f"pickle protocol {arg} is not one Python knows (0-5)")
        if self.protocol < 0:
            self.protocol = int(arg)

    def op_FRAME(self, arg, pos) -> None:
        # The unpickler reads a whole frame at once: its length must be inside the stream.
        if int(arg) > self.end - pos:
            raise self.refuse(
                f"truncated pickle: a frame of {arg} bytes at byte {pos}, but only "
                f"{max(0, self.end - pos)} bytes remain")

    def op_STOP(self, arg, pos) -> None:
        self.count(self.pop("STOP"))

    # -- the walk ---------------------------------------------------------------------------

    def run(self, reader: _BoundedReader) -> None:
        """Model every opcode up to STOP; the opcode count is bounded by the values pushed."""
        handlers = self.handlers
        for op, arg, pos in pickletools.genops(reader):
            self.ops += 1
            if self.ops > OPS_PER_ITEM * self.items + 4096:
                raise self.refuse(
                    f"its pickle runs {self.ops} opcodes for {self.items} values (a real "
                    "pickle needs at most a few per value); refused to bound the time spent")
            self.max_op_proto = max(self.max_op_proto, op.proto)
            handler = handlers.get(op.name)
            if handler is None:   # pragma: no cover - pickletools knows no other opcodes
                raise self.refuse(f"pickle opcode {op.name} is not understood")
            handler(arg, pos)
            if op.name == "STOP":
                return
        raise self.refuse("truncated pickle (no STOP opcode)")  # pragma: no cover


# Memo codes (entries >= 0 are node indices).
_M_UNSET, _M_SCALAR, _M_LONG_STR, _M_STR = -1, -2, -3, -4


def _scan_stream(reader: _BoundedReader, what: str, max_depth: int,
                 max_items: int | None) -> PickleStats:
    """Scan one pickle from the reader's position up to its STOP."""
    start = reader.tell()
    scanner = _Scanner(what, max_depth, DEFAULT_MAX_ITEMS if max_items is None else max_items)
    scanner.end = reader.end
    try:
        scanner.run(reader)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - pickletools: ValueError, UnicodeDecodeError, ...
        if scanner.ops == 0:
            raise CheckpointError(f"{what}: is not a pickle ({_first_line(exc)})") from None
        raise CheckpointError(
            f"{what}: malformed or truncated pickle near byte {reader.tell() - start} "
            f"({_first_line(exc)})") from None
    protocol = scanner.protocol if scanner.protocol >= 0 else min(scanner.max_op_proto, 1)
    return PickleStats(protocol=protocol, max_depth=scanner.deepest, objects=scanner.objects,
                       items=scanner.items, globals=frozenset(scanner.globals),
                       global_counts=dict(scanner.globals), length=reader.tell() - start)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0][:200] if lines else "") or type(exc).__name__


def scan_pickle(data: bytes, what: str, max_depth: int = DEFAULT_MAX_DEPTH,
                max_items: int | None = None) -> PickleStats:
    """Check one pickle stream's shape without unpickling it.

    `what` names the source in errors ("model file 'x.pth'"). Refuses with CheckpointError a
    stream nesting containers deeper than `max_depth`, pushing more than `max_items` values
    (default DEFAULT_MAX_ITEMS), with absurd memo slots or frame lengths, or that is malformed
    or truncated. Bytes after the STOP opcode are not read (`length` says where it ended).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("scan_pickle takes the stream's bytes")
    if len(data) == 0:
        raise CheckpointError(f"{what}: is empty (0 bytes), not a pickle")
    raw = io.BytesIO(data)
    return _scan_stream(_BoundedReader(raw, len(data)), what, max_depth, max_items)


def scan_pickle_sequence(data: bytes, what: str, parts: tuple[str, ...],
                         max_depth: int = DEFAULT_MAX_DEPTH,
                         max_items: int | None = None) -> list[PickleStats]:
    """Check pickles written one after another (torch's legacy format), one per name in `parts`.

    Each is scanned from where the previous one stopped; the bytes after the last are not
    read. Errors name the part ("model file 'x' (system info pickle): ...").
    """
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("scan_pickle_sequence takes the stream's bytes")
    raw = io.BytesIO(data)
    return _scan_parts(raw, len(data), what, parts, max_depth, max_items)


def _scan_parts(raw: BinaryIO, size: int, what: str, parts: tuple[str, ...], max_depth: int,
                max_items: int | None) -> list[PickleStats]:
    found = []
    for part in parts:
        if raw.tell() >= size:
            raise CheckpointError(f"{what}: truncated (it ends before the {part} pickle)")
        start = raw.tell()
        limit = min(size - start, MAX_DATA_PKL_BYTES)
        try:
            found.append(_scan_stream(_BoundedReader(raw, limit), f"{what} ({part} pickle)",
                                      max_depth, max_items))
        except CheckpointError:
            if limit < size - start and raw.tell() - start >= limit:
                raise CheckpointError(
                    f"{what} ({part} pickle): longer than {MAX_DATA_PKL_BYTES} bytes, which "
                    "no checkpoint needs") from None
            raise
    return found


# ----------------------------------------------------------------------------- torch files

def _starts_with_legacy_magic(head: bytes) -> bool:
    """Whether the first pickle in `head` is torch's legacy magic number and nothing else."""
    try:
        ops = []
        for op, arg, _ in pickletools.genops(io.BytesIO(head)):
            if op.name == "STOP":
                return len(ops) == 1 and ops[0][0] in _INT_OPS and ops[0][1] == TORCH_LEGACY_MAGIC
            if op.name not in ("PROTO", "FRAME"):
                ops.append((op.name, arg))
            if len(ops) > 1:
                return False
    except Exception:  # noqa: BLE001 - not a pickle at all: the caller's scan says so
        return False
    return False


def _scan_zip(source: Path | BinaryIO, what: str) -> None:
    """Scan every pickle member of a torch zip checkpoint (a path or a seekable binary file)
    after checking its size."""
    try:
        with zipfile.ZipFile(source) as archive:
            pickles = [info for info in archive.infolist()
                       if info.filename.rsplit("/", 1)[-1].endswith(".pkl")]
            if not any(info.filename.rsplit("/", 1)[-1] == "data.pkl" for info in pickles):
                raise CheckpointError(
                    f"{what}: is a zip archive without a data.pkl member, so not a torch "
                    "checkpoint")
            for info in pickles:
                member = f"{what} (member {info.filename!r})"
                if info.flag_bits & 0x1:
                    raise CheckpointError(f"{member}: is encrypted")
                if info.file_size > MAX_DATA_PKL_BYTES:
                    raise CheckpointError(
                        f"{member}: its pickle claims {info.file_size} bytes, more than the "
                        f"{MAX_DATA_PKL_BYTES} allowed (torch writes about 100 bytes a tensor)")
                if info.compress_type != zipfile.ZIP_STORED and \
                        info.file_size > MAX_COMPRESSION_RATIO * max(1, info.compress_size):
                    raise CheckpointError(
                        f"{member}: compressed {info.compress_size} bytes would expand to "
                        f"{info.file_size} (a zip bomb?)")
                with archive.open(info) as stream:
                    data = stream.read(MAX_DATA_PKL_BYTES + 1)
                if len(data) > MAX_DATA_PKL_BYTES:
                    raise CheckpointError(f"{member}: its pickle is larger than it claims")
                scan_pickle(data, member)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile fails in many ways on damaged archives
        raise CheckpointError(
            f"{what}: is a damaged zip archive ({_first_line(exc)}); truncated or corrupt?"
        ) from None


def scan_torch_file(path: Path) -> None:
    """Check the pickles `torch.load` would read from a file, before it reads them.

    - a zip checkpoint (starts `PK\\x03\\x04`): every `*.pkl` member (there must be a
      `data.pkl`) after checking its size from the zip directory, and read only then;
    - a legacy `torch.save(..., _use_new_zipfile_serialization=False)` file: pickles in a row
      (magic number, protocol version, system info, the object, the storage keys, then raw
      storage bytes): the five pickles are scanned, straight from the file;
    - anything else is scanned as one bare pickle (what torch.load would try to read first).
    Raises CheckpointError naming the file on the first problem; returns None when it is fine.

    The file is opened again by whoever loads it afterwards; gan_core's own reader
    (gan_core.io.pickles.read_pickle_state) instead scans and loads one pinned copy of the
    bytes through scan_torch_stream, so the file cannot change in between.
    """
    path = Path(path)
    what = f"model file {path.name!r}"
    try:
        size = path.stat().st_size
        with open(path, "rb") as raw:
            scan_torch_stream(raw, size, what)
    except CheckpointError:
        raise
    except OSError as exc:
        raise CheckpointError(f"{what}: cannot be read ({_first_line(exc)})") from None


def scan_torch_stream(raw: BinaryIO, size: int, what: str) -> None:
    """scan_torch_file on an open, seekable binary file of `size` bytes (read from its start);
    `what` names it in errors."""
    raw.seek(0)
    head = raw.read(64)
    if not head:
        raise CheckpointError(f"{what}: is empty (0 bytes)")
    if head.startswith(b"PK\x03\x04"):
        _scan_zip(raw, what)
        return
    raw.seek(0)
    _scan_legacy(raw, size, head, what)


_LEGACY_PARTS = ("magic number", "protocol version", "system info", "object", "storage keys")


def _scan_legacy(raw: BinaryIO, size: int, head: bytes, what: str) -> None:
    if not _starts_with_legacy_magic(head):
        # Not torch's legacy format: torch.load would still unpickle the first pickle.
        _scan_stream(_BoundedReader(raw, size), what, DEFAULT_MAX_DEPTH, None)
        return
    _scan_parts(raw, size, f"{what} (legacy torch file)", _LEGACY_PARTS, DEFAULT_MAX_DEPTH, None)
