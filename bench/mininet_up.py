"""Time Mininet bringing up N hosts on one Linux bridge (no controller); run with Debian's python3.

Prints one line: seconds from this script's start (imports included) until the network is up,
then seconds to stop it. A ping between the first and last host proves the hosts are usable.
"""

import sys
import time

START = time.monotonic()

from mininet.log import setLogLevel  # noqa: E402
from mininet.net import Mininet  # noqa: E402
from mininet.nodelib import LinuxBridge  # noqa: E402
from mininet.topo import SingleSwitchTopo  # noqa: E402

setLogLevel("error")
hosts = int(sys.argv[1])
net = Mininet(topo=SingleSwitchTopo(hosts), switch=LinuxBridge, controller=None, autoSetMacs=True)
net.start()
up = time.monotonic() - START
loss = net.ping([net.hosts[0], net.hosts[-1]], timeout=2)
stop_start = time.monotonic()
net.stop()
print(f"{up:.3f} {time.monotonic() - stop_start:.3f} {loss}")
