"""Partner Portal pages, one module per page or family of pages.

Every view is wrapped in `partner_page` and starts its queries from the partner it is given.
Writes go through the key and account services; these modules only translate requests into
their calls and their errors into what a person reads.
"""
