# cython: language_level=3
"""The front door's relay after Logon, in C: bytes go both ways between a counterparty and QuickFIX's acceptor on a
thread that never takes the GIL, and what the counterparty sends is checked against the size limit on the way.

`StreamCheck` is the check alone (the door's Python relay, used with TLS, runs it on each read); `Relay` moves
connection pairs with it over one epoll loop (`Relay.run`, on a thread of its own). See `fix_gateway.door`.

THE CHECK. At each message boundary the stream must carry a FIX header, `8=FIX.4.<digit>` SOH `9=<1 to 9 digits>`
SOH; the message then runs BodyLength bytes past the header plus the trailer (`10=nnn` SOH, 7 bytes). A BodyLength
over the limit fails the check at once, before the body comes. Bytes that cannot be part of a header are skipped up to
the next `8` that could start one (QuickFIX's own parser skips them the same way and judges them); a header split
across reads is held (at most 22 bytes), nothing else is.

THE RELAY. Each pair is a counterparty's socket (near) and a connection to QuickFIX (far), both non-blocking. What
one side sends is written to the other at once; what the other cannot take yet is held, and the sending side is not
read again until it is written (so at most one read, 64 KiB, is held per direction, and a side that stops reading
holds up only its own pair). A read whose check fails is not forwarded: the pair ends with the reason. The near side
closing or failing ends the pair; the far side closing (QuickFIX's Logout, a refused Logon) ends it once what QuickFIX
sent has been written to the counterparty. Ending closes both sockets and records (pair id, reason; empty for a side
that simply closed) for `ended`, signalled on `ended_fd`.
"""

from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdint cimport uint32_t, uint64_t
from libc.stdio cimport snprintf
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memmove


cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void *ptr
        int fd
        uint32_t u32
        uint64_t u64

    struct epoll_event:
        uint32_t events
        epoll_data_t data

    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event)
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
    enum:
        EPOLLIN
        EPOLLOUT
        EPOLLERR
        EPOLLHUP
        EPOLL_CTL_ADD
        EPOLL_CTL_MOD
        EPOLL_CTL_DEL
        EPOLL_CLOEXEC

cdef extern from "<sys/eventfd.h>" nogil:
    int eventfd(unsigned int initval, int flags)
    enum:
        EFD_NONBLOCK
        EFD_CLOEXEC

cdef extern from "<unistd.h>" nogil:
    ssize_t read(int fd, void *buf, size_t count)
    ssize_t write(int fd, const void *buf, size_t count)
    int close(int fd)

cdef extern from "<sys/socket.h>" nogil:
    ssize_t recv(int sockfd, void *buf, size_t length, int flags)
    ssize_t send(int sockfd, const void *buf, size_t length, int flags)
    enum:
        MSG_NOSIGNAL

cdef extern from "<fcntl.h>" nogil:
    int fcntl(int fd, int cmd, ...)
    enum:
        F_GETFL
        F_SETFL
        O_NONBLOCK

cdef extern from *:
    """#define RELAY_WAKE 0xFFFFFFFFFFFFFFFFull  /* the wake-up eventfd's key: no pair slot reaches it */"""
    const uint64_t WAKE "RELAY_WAKE"

cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass

    int pthread_mutex_init(pthread_mutex_t *mutex, void *attr)
    int pthread_mutex_lock(pthread_mutex_t *mutex)
    int pthread_mutex_unlock(pthread_mutex_t *mutex)


DEF HEAD_MAX = 22  # "8=FIX.4.4" SOH "9=" 9 digits SOH
DEF TRAILER = 7  # "10=nnn" SOH
DEF WHY_MAX = 96
DEF READ_MAX = 65536
DEF EVENTS_MAX = 64

# -- THE CHECK (pure) --


cdef struct Check:
    long long limit
    long long rest  # bytes of the current message still to come after its header
    int head_len
    unsigned char head[HEAD_MAX]


cdef int _head_state(const unsigned char *h, int n, long long *length) noexcept nogil:
    """0: `h[:n]` cannot begin a header; 1: it may, more must come; 2: it is a whole header (`length` set)."""
    cdef const char *lead = b"8=FIX.4."
    cdef int i
    cdef long long value = 0
    for i in range(n if n < 8 else 8):
        if h[i] != <unsigned char>lead[i]:
            return 0
    if n > 8 and not (48 <= h[8] <= 57):
        return 0
    if n > 9 and h[9] != 1:
        return 0
    if n > 10 and h[10] != 57:  # '9'
        return 0
    if n > 11 and h[11] != 61:  # '='
        return 0
    for i in range(12, n):
        if 48 <= h[i] <= 57:
            if i - 12 >= 9:
                return 0
            value = value * 10 + (h[i] - 48)
        elif h[i] == 1 and i > 12 and i == n - 1:
            length[0] = value
            return 2
        else:
            return 0
    return 1


cdef int _check(Check *c, const unsigned char *data, Py_ssize_t n, char *why) noexcept nogil:
    """Advance `c` over `data[:n]`; -1 (and the reason in `why`) when a BodyLength is over the limit, else 0."""
    cdef Py_ssize_t at = 0, take
    cdef long long length = 0
    cdef int state, k
    while at < n:
        if c.rest > 0:
            take = n - at if n - at < c.rest else <Py_ssize_t>c.rest
            c.rest -= take
            at += take
            continue
        c.head[c.head_len] = data[at]
        c.head_len += 1
        at += 1
        state = _head_state(c.head, c.head_len, &length)
        while state == 0:  # drop up to the next '8' that could start a header
            k = 1
            while k < c.head_len and c.head[k] != 56:
                k += 1
            memmove(c.head, c.head + k, c.head_len - k)
            c.head_len -= k
            state = _head_state(c.head, c.head_len, &length) if c.head_len else 1
        if state == 2:
            if length > c.limit:
                snprintf(why, WHY_MAX, "BodyLength %lld over the limit of %lld bytes", length, c.limit)
                return -1
            c.rest = length + TRAILER
            c.head_len = 0
    return 0


cdef class StreamCheck:
    """The size check of one counterparty's stream from a message boundary on (see THE CHECK)."""

    cdef Check c

    def __cinit__(self, long long limit):
        self.c.limit = limit
        self.c.rest = 0
        self.c.head_len = 0

    def feed(self, const unsigned char[:] data) -> None:
        """Check the next bytes; raises ValueError with the reason when a BodyLength is over the limit (the check is
        then spent: the connection ends)."""
        cdef char why[WHY_MAX]
        cdef int bad
        with nogil:
            bad = _check(&self.c, &data[0], data.shape[0], why) if data.shape[0] else 0
        if bad:
            raise ValueError(why.decode())


# -- THE RELAY --


cdef struct Held:
    char *data
    Py_ssize_t length
    Py_ssize_t capacity


cdef struct Pair:
    long long id
    int near
    int far
    int closing  # the far side closed: write what it sent, then end
    uint32_t near_mask
    uint32_t far_mask
    Held to_near
    Held to_far
    Check check


cdef struct Ended:
    long long id
    char why[WHY_MAX]


cdef int _hold(Held *h, const char *data, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t need = h.length + n
    cdef char *grown
    if need > h.capacity:
        grown = <char *>realloc(h.data, need)
        if grown == NULL:
            return -1
        h.data = grown
        h.capacity = need
    memcpy(h.data + h.length, data, n)
    h.length = need
    return 0


cdef int _send(int fd, Held *h, const char *data, Py_ssize_t n) noexcept nogil:
    """Write `data` to `fd` after what `h` holds for it, holding what the socket does not take; -1 on a failed
    socket."""
    cdef ssize_t w
    if h.length == 0:
        w = send(fd, data, n, MSG_NOSIGNAL)
        if w < 0:
            if errno != EAGAIN and errno != EINTR:
                return -1
            w = 0
        data += w
        n -= w
    return _hold(h, data, n) if n > 0 else 0


cdef int _flush(int fd, Held *h) noexcept nogil:
    """Write what `h` holds for `fd`, as much as the socket takes; -1 on a failed socket."""
    cdef ssize_t w
    if h.length == 0:
        return 0
    w = send(fd, h.data, h.length, MSG_NOSIGNAL)
    if w < 0:
        return 0 if errno == EAGAIN or errno == EINTR else -1
    memmove(h.data, h.data + w, h.length - w)
    h.length -= w
    return 0


cdef int _nonblocking(int fd) noexcept nogil:
    cdef int flags = fcntl(fd, F_GETFL)
    return -1 if flags < 0 else fcntl(fd, F_SETFL, flags | O_NONBLOCK)


cdef class Relay:
    """Connection pairs relayed on one epoll loop (see THE RELAY). `add` and `ended` are called from any thread;
    `run` blocks its thread, without the GIL, until `stop`."""

    cdef int ep
    cdef int wake_fd
    cdef readonly int ended_fd
    cdef long long limit
    cdef long long next_id
    cdef bint stopping
    cdef pthread_mutex_t mutex
    cdef Pair **pairs
    cdef Py_ssize_t slots
    cdef Ended *ended_list
    cdef Py_ssize_t ended_count
    cdef Py_ssize_t ended_capacity
    cdef char buf[READ_MAX]

    def __cinit__(self, long long limit):
        """`limit`: the largest BodyLength a counterparty may send."""
        cdef epoll_event ev
        self.limit = limit
        self.next_id = 1
        self.ep = epoll_create1(EPOLL_CLOEXEC)
        self.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
        self.ended_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
        if self.ep < 0 or self.wake_fd < 0 or self.ended_fd < 0:
            raise OSError(errno, "the relay's epoll or eventfd could not be created")
        ev.events = EPOLLIN
        ev.data.u64 = WAKE
        epoll_ctl(self.ep, EPOLL_CTL_ADD, self.wake_fd, &ev)
        pthread_mutex_init(&self.mutex, NULL)

    def __dealloc__(self):
        cdef Py_ssize_t i
        for i in range(self.slots):
            if self.pairs[i] != NULL:
                self._end(i, b"")
        free(self.pairs)
        free(self.ended_list)
        for fd in (self.ep, self.wake_fd, self.ended_fd):
            if fd >= 0:
                close(fd)

    def add(self, int near, int far, const unsigned char[:] to_far, StreamCheck check) -> int:
        """Relay `near` (the counterparty) and `far` (QuickFIX) from now on; both file descriptors become the
        relay's (made non-blocking, closed when the pair ends). `to_far`: what the counterparty sent that QuickFIX
        has not had yet, written first; `check`: the state of the counterparty's stream after those bytes. Returns
        the pair's id (see `ended`)."""
        cdef Pair *p = <Pair *>malloc(sizeof(Pair))
        cdef Py_ssize_t slot = 0
        cdef Pair **grown
        cdef Py_ssize_t i
        cdef int failed = 0
        cdef long long pair_id
        cdef epoll_event ev
        if p == NULL:
            raise MemoryError()
        p.near = near
        p.far = far
        p.closing = 0
        p.to_near.data = NULL
        p.to_near.length = p.to_near.capacity = 0
        p.to_far.data = NULL
        p.to_far.length = p.to_far.capacity = 0
        p.check = check.c
        with nogil:
            pthread_mutex_lock(&self.mutex)
            while slot < self.slots and self.pairs[slot] != NULL:
                slot += 1
            if slot == self.slots:
                grown = <Pair **>realloc(self.pairs, (self.slots * 2 + 8) * sizeof(Pair *))
                if grown == NULL:
                    failed = 1
                else:
                    self.pairs = grown
                    for i in range(self.slots, self.slots * 2 + 8):
                        self.pairs[i] = NULL
                    self.slots = self.slots * 2 + 8
            if not failed:
                pair_id = p.id = self.next_id
                self.next_id += 1
                self.pairs[slot] = p
                _nonblocking(near)
                _nonblocking(far)
                p.near_mask = p.far_mask = 0
                ev.events = 0
                ev.data.u64 = <uint64_t>slot << 1
                epoll_ctl(self.ep, EPOLL_CTL_ADD, near, &ev)
                ev.data.u64 = (<uint64_t>slot << 1) | 1
                epoll_ctl(self.ep, EPOLL_CTL_ADD, far, &ev)
                if to_far.shape[0] and _send(far, &p.to_far, <const char *>&to_far[0], to_far.shape[0]) < 0:
                    self._end(slot, b"")
                else:
                    self._watch(slot, p)
            pthread_mutex_unlock(&self.mutex)
        if failed:
            free(p)
            raise MemoryError()
        return pair_id

    def ended(self) -> list[tuple[int, str]]:
        """The pairs that ended since the last call: (id, reason; empty when a side simply closed)."""
        cdef unsigned long long count
        cdef Py_ssize_t i
        read(self.ended_fd, &count, sizeof(count))
        out = []
        pthread_mutex_lock(&self.mutex)
        try:
            for i in range(self.ended_count):
                out.append((self.ended_list[i].id, self.ended_list[i].why.decode()))
            self.ended_count = 0
        finally:
            pthread_mutex_unlock(&self.mutex)
        return out

    def run(self) -> None:
        """Relay until `stop` (blocks; the GIL is released throughout)."""
        cdef epoll_event events[EVENTS_MAX]
        cdef int n, i
        cdef uint64_t key
        with nogil:
            while not self.stopping:
                n = epoll_wait(self.ep, events, EVENTS_MAX, -1)
                if n < 0:
                    if errno == EINTR:
                        continue
                    break
                pthread_mutex_lock(&self.mutex)
                for i in range(n):
                    key = events[i].data.u64
                    if key != WAKE:
                        self._on_event(<Py_ssize_t>(key >> 1), <int>(key & 1), events[i].events)
                pthread_mutex_unlock(&self.mutex)

    def stop(self) -> None:
        """Make `run` return (the pairs stay open until the relay is dropped)."""
        cdef unsigned long long one = 1
        self.stopping = True
        write(self.wake_fd, &one, sizeof(one))

    # -- on the relay's thread, holding the mutex --

    cdef void _on_event(self, Py_ssize_t slot, int far_side, uint32_t events) noexcept nogil:
        cdef Pair *p = self.pairs[slot] if slot < self.slots else NULL
        cdef char why[WHY_MAX]
        cdef ssize_t n
        if p == NULL:
            return  # ended earlier in this batch
        why[0] = 0
        if far_side:
            if p.closing:
                return
            if _flush(p.far, &p.to_far) < 0:
                self._end(slot, b"")
                return
            if p.to_near.length == 0 or events & (EPOLLHUP | EPOLLERR):  # a closed side is read to its end
                n = recv(p.far, self.buf, READ_MAX, 0)
                if n > 0:
                    if _send(p.near, &p.to_near, self.buf, n) < 0:
                        self._end(slot, b"")
                        return
                elif n == 0 or (errno != EAGAIN and errno != EINTR):
                    p.closing = 1  # QuickFIX ended it: what it sent goes first
                    epoll_ctl(self.ep, EPOLL_CTL_DEL, p.far, NULL)
        else:
            if _flush(p.near, &p.to_near) < 0:
                self._end(slot, b"")
                return
            if p.closing:
                if p.to_near.length == 0:
                    self._end(slot, b"")
                return
            if p.to_far.length == 0 or events & (EPOLLHUP | EPOLLERR):
                n = recv(p.near, self.buf, READ_MAX, 0)
                if n > 0:
                    if _check(&p.check, <const unsigned char *>self.buf, n, why) < 0:
                        self._end(slot, why)
                        return
                    if _send(p.far, &p.to_far, self.buf, n) < 0:
                        self._end(slot, b"")
                        return
                elif n == 0 or (errno != EAGAIN and errno != EINTR):
                    self._end(slot, b"")  # the counterparty left
                    return
        if p.closing and p.to_near.length == 0:
            self._end(slot, b"")
            return
        self._watch(slot, p)

    cdef void _watch(self, Py_ssize_t slot, Pair *p) noexcept nogil:
        """Read a side only while the other has nothing held for it; wait to write where something is held."""
        cdef epoll_event ev
        cdef uint32_t near = (EPOLLIN if not p.closing and p.to_far.length == 0 else 0) | (
            EPOLLOUT if p.to_near.length else 0)
        cdef uint32_t far = (EPOLLIN if p.to_near.length == 0 else 0) | (EPOLLOUT if p.to_far.length else 0)
        if near != p.near_mask:
            p.near_mask = ev.events = near
            ev.data.u64 = <uint64_t>slot << 1
            epoll_ctl(self.ep, EPOLL_CTL_MOD, p.near, &ev)
        if not p.closing and far != p.far_mask:
            p.far_mask = ev.events = far
            ev.data.u64 = (<uint64_t>slot << 1) | 1
            epoll_ctl(self.ep, EPOLL_CTL_MOD, p.far, &ev)

    cdef void _end(self, Py_ssize_t slot, const char *why) noexcept nogil:
        cdef Pair *p = self.pairs[slot]
        cdef Ended *grown
        cdef unsigned long long one = 1
        epoll_ctl(self.ep, EPOLL_CTL_DEL, p.near, NULL)
        epoll_ctl(self.ep, EPOLL_CTL_DEL, p.far, NULL)
        close(p.near)
        close(p.far)
        if self.ended_count == self.ended_capacity:
            grown = <Ended *>realloc(self.ended_list, (self.ended_capacity * 2 + 8) * sizeof(Ended))
            if grown != NULL:
                self.ended_list = grown
                self.ended_capacity = self.ended_capacity * 2 + 8
        if self.ended_count < self.ended_capacity:
            self.ended_list[self.ended_count].id = p.id
            snprintf(self.ended_list[self.ended_count].why, WHY_MAX, "%s", why)
            self.ended_count += 1
        free(p.to_near.data)
        free(p.to_far.data)
        free(p)
        self.pairs[slot] = NULL
        write(self.ended_fd, &one, sizeof(one))
