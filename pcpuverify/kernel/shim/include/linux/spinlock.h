/* stands in for <linux/spinlock.h>: everything is in pcpu_shim.h */
