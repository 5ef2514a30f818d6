"""`oms demo` (`run`): the whole OMS on embedded defaults, an exchange simulator and a scripted trading day over FIX
and REST, then the run's results.

By role: `configs` (the run's configuration files, the simulator's process), `counterparties` (FIX clients and the
market makers), `day` (the script), `results` (what is shown afterwards), `steps` (a step and how it fails).
"""

from oms.apps.demo.configs import DemoParams
from oms.apps.demo.run import add_demo_command, run_demo
from oms.apps.demo.steps import DemoFailed

__all__ = ["DemoFailed", "DemoParams", "add_demo_command", "run_demo"]
