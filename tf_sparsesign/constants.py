"""Wire-format constants shared by the ops, the references, the byte
arithmetic and the aggregation (no TensorFlow here, so ``plan`` stays light).

Wire format v1: a code is the int32 ``(flat_index << 1) | (value < 0)``; a
message is ``k`` codes ascending by index, padded at the tail with
:data:`PAD_CODE`. The Rice format is specified in docs/WIRE.md.
"""

#: Code that fills the slots of a message beyond its nonzero entries.
PAD_CODE = -1
#: Index spaces must have fewer elements than this (codes are int32).
MAX_ELEMENTS = 1 << 30
#: Rice message words before the bit stream: length, entry count, tag.
RICE_HEADER_WORDS = 3
#: Rice tag word without r: magic 0x5269 ("Ri"), version 1, r in the low byte.
RICE_TAG_BASE = (0x5269 << 16) | (1 << 8)
#: Largest Rice parameter.
RICE_MAX_R = 30
#: ln(golden ratio) as a 16-bit fixed-point fraction (31537 / 2**16).
RICE_LN_PHI_Q16 = 31537
#: Packed signs (docs/WIRE.md): one ternary digit per coordinate (0 = not
#: sent, 1 = +, 2 = -), five per byte (3**5 = 243 <= 256), four bytes per
#: int32 word.
PACKED_DIGITS_PER_BYTE = 5
PACKED_DIGITS_PER_WORD = 20
#: Largest valid byte of a packed message (3**5 - 1).
PACKED_MAX_BYTE = 242
