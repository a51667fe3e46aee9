"""Paper: statements that go by post, made ready for the print vendor.

Each name loads its module on first use: the barcode pulls in reportlab's barcode widgets and the
address checks usaddress's tagger, which a stage that only lists the paper queue need not pay for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from pipeline.paper.addresses import AddressProblem, AddressReason, MailingAddress, prepare_address
    from pipeline.paper.batches import (
        Batch,
        BatchLimits,
        BatchRun,
        Piece,
        SetAside,
        file_entry,
        manifest_pieces,
        write_batches,
    )
    from pipeline.paper.drops import (
        BatchInvalid,
        DeliveredFile,
        DropAccessDenied,
        DropConflict,
        DropError,
        DropMisconfigured,
        DropReceipt,
        DropUnreachable,
        HostKeyUnknown,
        VendorDrop,
        VendorFile,
        open_drop,
    )
    from pipeline.paper.imb import ImbError, ImbFields, bar_states, draw_imb, serial_for, tracking_code
    from pipeline.paper.vendor_files import (
        ADDRESS_SEPARATOR,
        Acknowledgement,
        AckRow,
        RowProblem,
        TrackingFile,
        TrackingRow,
        VendorFileError,
        classify_vendor_file,
        parse_ack,
        parse_tracking,
    )
    from pipeline.paper.window_block import AddressBlockTooLarge, address_block

__all__ = [
    "AddressBlockTooLarge", "address_block",
    "AddressProblem", "AddressReason", "ImbError", "ImbFields", "MailingAddress", "bar_states",
    "draw_imb", "prepare_address", "serial_for", "tracking_code",
    "BatchInvalid", "DeliveredFile", "DropAccessDenied", "DropConflict", "DropError", "DropMisconfigured",
    "DropReceipt", "DropUnreachable", "HostKeyUnknown", "VendorDrop", "VendorFile", "open_drop",
    "Batch", "BatchLimits", "BatchRun", "Piece", "SetAside", "file_entry", "manifest_pieces", "write_batches",
    "ADDRESS_SEPARATOR", "AckRow", "Acknowledgement", "RowProblem", "TrackingFile", "TrackingRow",
    "VendorFileError", "classify_vendor_file", "parse_ack", "parse_tracking",
]

__getattr__ = lazy_exports(__name__, {
    "pipeline.paper.window_block": ("AddressBlockTooLarge", "address_block"),
    "pipeline.paper.addresses": ("AddressProblem", "AddressReason", "MailingAddress", "prepare_address"),
    "pipeline.paper.batches": ("Batch", "BatchLimits", "BatchRun", "Piece", "SetAside", "file_entry",
                               "manifest_pieces", "write_batches"),
    "pipeline.paper.drops": (
        "BatchInvalid", "DeliveredFile", "DropAccessDenied", "DropConflict", "DropError", "DropMisconfigured",
        "DropReceipt", "DropUnreachable", "HostKeyUnknown", "VendorDrop", "VendorFile", "open_drop",
    ),
    "pipeline.paper.imb": ("ImbError", "ImbFields", "bar_states", "draw_imb", "serial_for", "tracking_code"),
    "pipeline.paper.vendor_files": (
        "ADDRESS_SEPARATOR", "AckRow", "Acknowledgement", "RowProblem", "TrackingFile", "TrackingRow",
        "VendorFileError", "classify_vendor_file", "parse_ack", "parse_tracking",
    ),
})
