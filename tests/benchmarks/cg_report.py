#!/usr/bin/env python3
"""Summarises a callgrind profile of an echo server: instructions per echoed message,
system calls per message and the functions that cost the most (self cost, per message).

    cg_report.py callgrind.out [TOP] [MESSAGES]

MESSAGES is how many messages were echoed while the counters ran (profile.sh takes it
from the load generator). Without it, messages are counted as the calls to
send/write/sendmsg/writev, which is right only at depth 1, where every server answers each
64-byte message with exactly one of them."""
import collections
import re
import sys

names = {}


def resolve(text):
    m = re.match(r'\((\d+)\)(?: (.*))?', text)
    if not m:
        return text
    if m.group(2):
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), text)


def main():
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    self_cost = collections.Counter()
    calls = collections.Counter()
    fn = cfn = None
    after_calls = False
    for line in open(path):
        line = line.rstrip('\n')
        if line.startswith('fn='):
            fn = resolve(line[3:])
            after_calls = False
        elif line.startswith('cfn='):
            cfn = resolve(line[4:])
        elif line.startswith('calls='):
            calls[cfn.split('@')[0]] += int(line[6:].split()[0])
            after_calls = True
        elif line[:1].isdigit() or line[:1] in '+-*':
            parts = line.split()
            if len(parts) < 2:
                continue
            if after_calls:  # the inclusive cost of the call just named, not self cost
                after_calls = False
                continue
            self_cost[fn] += int(parts[1])
    total = sum(self_cost.values())
    sends = sum(calls[s] for s in ('send', 'write', 'sendmsg', 'writev'))
    msgs = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else sends
    if msgs == 0:
        sys.exit('no messages (and no send/write calls) in the profile')
    what = 'echoed' if msgs != sends or len(sys.argv) > 3 else 'send/write calls'
    print(f'messages ({what}): {msgs:,}   instructions: {total:,}   '
          f'per message: {total / msgs:.0f} Ir')
    sys_calls = ['recv', 'read', 'recvmsg', 'readv', 'send', 'write', 'sendmsg', 'writev',
                 'epoll_wait', 'epoll_ctl', 'malloc', 'free']
    print('calls per message: ' + ', '.join(
        f'{s} {calls[s] / msgs:.2f}' for s in sys_calls if calls[s]))
    print(f'top {top} functions by self cost (Ir per message):')
    for name, cost in self_cost.most_common(top):
        short = re.sub(r'asio::basic_stream_socket<asio::ip::tcp, asio::any_io_executor>', 'tcp::socket', name)
        short = re.sub(r'std::basic_string_view<char, std::char_traits<char> >', 'string_view', short)
        print(f'  {cost / msgs:7.1f}  {short[:150]}')


main()
