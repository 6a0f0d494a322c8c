/* stands in for <linux/memcontrol.h>: everything is in pcpu_shim.h */
