"""Customers: create, read, change, delete, search by name or any phone format."""

from __future__ import annotations

from aiohttp import web

from desk.customer_audit import AuditAction, record_change
from desk.customers import (
    CustomerDraft,
    CustomerPatch,
    create_customer,
    delete_customer,
    get_customer,
    search_customers,
    timeline,
    update_customer,
)
from web.api.endpoints import (
    STAFF,
    SUPERVISORS,
    Endpoint,
    path_id,
    read_body,
    read_query,
    unit_of_work,
)
from web.api.schemas import (
    CustomerOut,
    CustomerPageOut,
    CustomerQuery,
    PageQuery,
    TimelineOut,
    customer_out,
    timeline_out,
)
from web.audit import actor_of, note_read
from web.state import CLOCK, SESSIONS, SETTINGS


async def list_customers(request: web.Request) -> web.Response:
    query = read_query(request, CustomerQuery)
    async with request.app[SESSIONS]() as session:
        page = await search_customers(
            session,
            region=request.app[SETTINGS].phone_region,
            q=query.q,
            phone=query.phone,
            tier=query.tier,
            tag=query.tag,
            limit=query.limit,
            offset=query.offset,
        )
        out = CustomerPageOut(
            items=[customer_out(c) for c in page.items],
            total=page.total,
            limit=query.limit,
            offset=query.offset,
        )
    return web.json_response(out.model_dump(mode="json"))


async def create(request: web.Request) -> web.Response:
    draft = await read_body(request, CustomerDraft)
    async with unit_of_work(request) as uow:
        customer = await create_customer(
            uow,
            draft,
            region=request.app[SETTINGS].phone_region,
            now=request.app[CLOCK].now(),
        )
        record_change(
            uow.session,
            customer.id,
            AuditAction.CREATE,
            actor=actor_of(request),
            now=request.app[CLOCK].now(),
        )
        out = customer_out(customer)
        await uow.commit()
    return web.json_response(out.model_dump(mode="json"), status=201)


async def read(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as session:
        out = customer_out(await get_customer(session, path_id(request)))
    note_read(request, out.id)
    return web.json_response(out.model_dump(mode="json"))


async def update(request: web.Request) -> web.Response:
    customer_id = path_id(request)
    patch = await read_body(request, CustomerPatch)
    async with unit_of_work(request) as uow:
        customer = await update_customer(
            uow,
            customer_id,
            patch,
            region=request.app[SETTINGS].phone_region,
            now=request.app[CLOCK].now(),
        )
        record_change(
            uow.session,
            customer_id,
            AuditAction.UPDATE,
            actor=actor_of(request),
            now=request.app[CLOCK].now(),
            detail={"fields": sorted(patch.model_fields_set - {"version"})},
        )
        out = customer_out(customer)
        await uow.commit()
    return web.json_response(out.model_dump(mode="json"))


async def delete(request: web.Request) -> web.Response:
    customer_id = path_id(request)
    async with unit_of_work(request) as uow:
        await delete_customer(uow, customer_id, now=request.app[CLOCK].now())
        record_change(
            uow.session,
            customer_id,
            AuditAction.DELETE,
            actor=actor_of(request),
            now=request.app[CLOCK].now(),
        )
        await uow.commit()
    return web.Response(status=204)


async def customer_timeline(request: web.Request) -> web.Response:
    customer_id = path_id(request)
    query = read_query(request, PageQuery)
    async with request.app[SESSIONS]() as session:
        out = timeline_out(await timeline(session, customer_id, limit=query.limit))
    note_read(request, customer_id, AuditAction.TIMELINE)
    return web.json_response(out.model_dump(mode="json"))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v1/customers",
        list_customers,
        "Search customers by name/e-mail (q), any phone format (phone), tier or tag",
        "customers",
        STAFF,
        query=CustomerQuery,
        response=CustomerPageOut,
    ),
    Endpoint(
        "POST",
        "/api/v1/customers",
        create,
        "Create a customer",
        "customers",
        STAFF,
        body=CustomerDraft,
        response=CustomerOut,
        status=201,
    ),
    Endpoint(
        "GET",
        "/api/v1/customers/{id}",
        read,
        "One customer",
        "customers",
        STAFF,
        response=CustomerOut,
    ),
    Endpoint(
        "PATCH",
        "/api/v1/customers/{id}",
        update,
        "Change a customer (send the version you read; a stale one is refused with 409)",
        "customers",
        STAFF,
        body=CustomerPatch,
        response=CustomerOut,
        errors=(409,),
    ),
    Endpoint(
        "DELETE",
        "/api/v1/customers/{id}",
        delete,
        "Delete a customer",
        "customers",
        SUPERVISORS,
        status=204,
    ),
    Endpoint(
        "GET",
        "/api/v1/customers/{id}/timeline",
        customer_timeline,
        "The customer's interactions, newest first",
        "customers",
        STAFF,
        query=PageQuery,
        response=TimelineOut,
    ),
]
