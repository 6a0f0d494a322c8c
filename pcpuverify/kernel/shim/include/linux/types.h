/* stands in for <linux/types.h>: everything is in pcpu_shim.h */
