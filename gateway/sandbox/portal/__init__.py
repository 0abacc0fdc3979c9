"""The sandbox's supplier portals: the ``EProcurementService`` of the FMS eProcurement web
service standard, which the gateway calls as FMS did."""
