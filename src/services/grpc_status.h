// Our Status codes and gRPC's, both ways, for every gRPC server and client in fpgaserve.
// Header-only so that only targets that already use gRPC include it.
#pragma once

#include <grpcpp/grpcpp.h>

#include "core/status.h"

namespace fpgaserve {

inline grpc::Status ToGrpcStatus(const Status& st) {
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (st.code()) {
    case StatusCode::kOk: return grpc::Status::OK;
    case StatusCode::kInvalidArgument: code = grpc::StatusCode::INVALID_ARGUMENT; break;
    case StatusCode::kNotFound: code = grpc::StatusCode::NOT_FOUND; break;
    case StatusCode::kUnimplemented: code = grpc::StatusCode::UNIMPLEMENTED; break;
    case StatusCode::kFailedPrecondition: code = grpc::StatusCode::FAILED_PRECONDITION; break;
    case StatusCode::kResourceExhausted: code = grpc::StatusCode::RESOURCE_EXHAUSTED; break;
    case StatusCode::kUnavailable: code = grpc::StatusCode::UNAVAILABLE; break;
    case StatusCode::kInternal: code = grpc::StatusCode::INTERNAL; break;
    case StatusCode::kAlreadyExists: code = grpc::StatusCode::ALREADY_EXISTS; break;
    case StatusCode::kPermissionDenied: code = grpc::StatusCode::PERMISSION_DENIED; break;
    case StatusCode::kUnauthenticated: code = grpc::StatusCode::UNAUTHENTICATED; break;
    case StatusCode::kCancelled: code = grpc::StatusCode::CANCELLED; break;
    case StatusCode::kDeadlineExceeded: code = grpc::StatusCode::DEADLINE_EXCEEDED; break;
  }
  return {code, st.message()};
}

// A failed call as our Status; `peer` ("build server 127.0.0.1:50051") prefixes the messages of
// transport-level failures, which do not say where they came from.
inline Status FromGrpcStatus(const grpc::Status& st, const std::string& peer) {
  if (st.ok()) return Status::Ok();
  const std::string& m = st.error_message();
  switch (st.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT: return InvalidArgument(m);
    case grpc::StatusCode::NOT_FOUND: return NotFound(m);
    case grpc::StatusCode::UNIMPLEMENTED: return Unimplemented(m);
    case grpc::StatusCode::FAILED_PRECONDITION: return FailedPrecondition(m);
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return ResourceExhausted(m);
    case grpc::StatusCode::PERMISSION_DENIED: return PermissionDenied(m);
    case grpc::StatusCode::UNAUTHENTICATED: return Unauthenticated(m);
    case grpc::StatusCode::ALREADY_EXISTS: return AlreadyExists(m);
    case grpc::StatusCode::CANCELLED: return Cancelled(m);
    case grpc::StatusCode::DEADLINE_EXCEEDED: return DeadlineExceeded(peer + ": " + m);
    case grpc::StatusCode::UNAVAILABLE: return Unavailable(peer + ": " + m);
    default: return Internal(peer + ": " + m);
  }
}

}  // namespace fpgaserve
