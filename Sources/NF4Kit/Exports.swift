@_exported public import NF4KitCore
@_exported public import NF4KitFormats
@_exported public import NF4KitQuant
@_exported public import NF4KitMerge
@_exported public import NF4KitInspect
