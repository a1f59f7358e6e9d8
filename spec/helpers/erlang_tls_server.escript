#!/usr/bin/env escript
%% A TLS server on Erlang/OTP's ssl (the stack of MongooseIM's just_tls),
%% for the specs: usage erlang_tls_server.escript PORT CERT KEY. It listens
%% on 127.0.0.1:PORT with TLS 1.3 and 1.2 and every curve the stack has
%% (ssl:eccs(), as an operator gets by listing them), prints "ready", and
%% handshakes each connection; it stops by itself after 120 s.
main([Port, Cert, Key]) ->
    ok = ssl:start(),
    {ok, L} = ssl:listen(list_to_integer(Port), [{certfile, Cert}, {keyfile, Key}, {reuseaddr, true},
        {ip, {127,0,0,1}}, {versions, ['tlsv1.3', 'tlsv1.2']}, {eccs, ssl:eccs()}, {active, false}]),
    io:format("ready~n"),
    spawn(fun() -> timer:sleep(120000), halt(0) end),
    loop(L).

loop(L) ->
    case ssl:transport_accept(L) of
        {ok, S} ->
            spawn(fun() ->
                case ssl:handshake(S, 5000) of
                    {ok, S2} -> timer:sleep(200), ssl:close(S2);
                    _ -> ok
                end
            end),
            loop(L);
        _ -> loop(L)
    end.
