/* stands in for <linux/percpu.h>: everything is in pcpu_shim.h */
